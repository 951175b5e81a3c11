"""``zhie batch``: a corpus through one task, in bounded memory, resumable after any kill, locally
(worker processes) or on Ray Data; the output's results are the HTTP API's JSON (``zhie.tasks.results``)."""
