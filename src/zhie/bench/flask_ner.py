"""The HTTP side both NER baselines share (``baseline_app``, ``seed_app``): Flask, no torch here, so
each app sets its torch threads before anything else touches torch."""

from __future__ import annotations

from flask import Flask, jsonify, request


def flask_ner_app(ner, name: str) -> Flask:
    """``GET /health`` and ``POST /ner`` {"text"} -> {"entities"} around a warmed-up ``ner(text)``: the
    HTTP side both baselines share."""
    ner("预热")
    app = Flask(name)

    @app.get("/health")
    def health():
        return jsonify(status="ok")

    @app.post("/ner")
    def ner_route():
        body = request.get_json(force=True, silent=True) or {}
        text = body.get("text")
        if not isinstance(text, str) or not text:
            return jsonify(error="text: a non-empty string is required"), 400
        return jsonify(entities=ner(text))

    return app
