"""Build ``evals/extract-handwritten.jsonl``: a small schema-extraction eval set written by the zhie
authors (not taken from any corpus, so it can ship), in ``zhie eval extract`` format.

Each item names spans by their text; offsets are found here (``"text@2"`` is the second occurrence),
so the file cannot drift from its source. Sources tag what the line measures:
``seen`` (type names the extractor was trained on), ``unseen`` (names it never saw, checked against
every name and synonym of zhie.train.uie_data by tests/test_uie_data.py), ``relation``
and ``opinion`` (nested nodes), ``brief`` (the product brief's example).

    python evals/build_handwritten.py   # rewrites evals/extract-handwritten.jsonl
"""

from __future__ import annotations

import json
from pathlib import Path

ITEMS = [
    # --- type names seen in training (MSRA / CLUENER / literature prompts) ---
    ("seen", "张伟上周去了杭州，参观了阿里巴巴的总部。", {"人物": None, "地点": None, "组织机构": None},
     {"人物": ["张伟"], "地点": ["杭州"], "组织机构": ["阿里巴巴"]}),
    ("seen", "国务院总理李强在北京人民大会堂会见了德国总理朔尔茨。", {"人物": None, "地点": None, "职位": None},
     {"人物": ["李强", "朔尔茨"], "地点": ["北京人民大会堂", "德国"], "职位": ["总理", "总理@2"]}),
    ("seen", "王小明把《三体》借给了同事，他说刘慈欣是他最喜欢的作家。", {"人名": None, "书名": None},
     {"人名": ["王小明", "刘慈欣"], "书名": ["《三体》"]}),
    ("seen", "中国科学院和清华大学联合发布了一份关于长江流域生态的报告。", {"组织机构": None, "地点": None},
     {"组织机构": ["中国科学院", "清华大学"], "地点": ["长江流域"]}),
    ("seen", "腾讯公司今天宣布，将在深圳南山区建设新的研发中心。", {"公司": None, "地址": None},
     {"公司": ["腾讯公司"], "地址": ["深圳南山区"]}),
    ("seen", "李娜在法国网球公开赛上夺得女单冠军，成为首位获得大满贯单打冠军的亚洲球员。", {"人物": None, "地点": None},
     {"人物": ["李娜"], "地点": ["法国", "亚洲"]}),
    ("seen", "今天上午没有任何人来访，办公室里很安静。", {"人物": None, "组织机构": None}, {}),
    # --- type names never seen in training ---
    ("unseen", "这款小米14手机售价3999元，配备骁龙8 Gen 3处理器。", {"产品名称": None, "价格": None, "处理器型号": None},
     {"产品名称": ["小米14"], "价格": ["3999元"], "处理器型号": ["骁龙8 Gen 3"]}),
    ("unseen", "患者因高血压入院，医生开了氨氯地平片，每日一次。", {"疾病": None, "药物": None},
     {"疾病": ["高血压"], "药物": ["氨氯地平片"]}),
    ("unseen", "2023年9月，比亚迪在慕尼黑车展上发布了海豹车型。", {"日期": None, "品牌": None, "车型": None, "展会": None},
     {"日期": ["2023年9月"], "品牌": ["比亚迪"], "车型": ["海豹"], "展会": ["慕尼黑车展"]}),
    ("unseen", "湖人队以112比105击败勇士队，詹姆斯砍下32分。", {"球队": None, "比分": None, "运动员": None},
     {"球队": ["湖人队", "勇士队"], "比分": ["112比105"], "运动员": ["詹姆斯"]}),
    ("unseen", "这家餐厅的招牌菜是红烧肉和糖醋排骨，人均消费约80元。", {"菜品": None, "价格": None},
     {"菜品": ["红烧肉", "糖醋排骨"], "价格": ["80元"]}),
    ("unseen", "订单号A20231105已于11月6日从上海仓发货，预计两天后送达。", {"订单号": None, "日期": None, "仓库": None},
     {"订单号": ["A20231105"], "日期": ["11月6日"], "仓库": ["上海仓"]}),
    ("unseen", "周杰伦的新歌《最伟大的作品》在QQ音乐上线首日播放量破亿。", {"艺人": None, "新歌": None, "平台": None},
     {"艺人": ["周杰伦"], "新歌": ["《最伟大的作品》"], "平台": ["QQ音乐"]}),
    ("unseen", "患者近三天持续发热、咳嗽，医生建议做血常规和胸部CT检查。", {"症状": None, "检查项目": None},
     {"症状": ["发热", "咳嗽"], "检查项目": ["血常规", "胸部CT"]}),
    ("unseen", "贵州茅台（600519）今日收涨2.35%，报收1685元。", {"股票名称": None, "股票代码": None, "涨幅": None},
     {"股票名称": ["贵州茅台"], "股票代码": ["600519"], "涨幅": ["2.35%"]}),
    ("unseen", "被告人张某犯盗窃罪，被杭州市西湖区人民法院依法判决。", {"罪名": None, "法院": None},
     {"罪名": ["盗窃罪"], "法院": ["杭州市西湖区人民法院"]}),
    ("unseen", "我订了明早从北京飞往成都的CA1405航班。", {"航班号": None, "出发地": None, "目的地": None},
     {"航班号": ["CA1405"], "出发地": ["北京"], "目的地": ["成都"]}),
    ("unseen", "这件羽绒服有黑色和米白色两种颜色可选。", {"颜色": None, "服装": None},
     {"颜色": ["黑色", "米白色"], "服装": ["羽绒服"]}),
    ("unseen", "做这道菜需要准备土豆、牛肉和洋葱，小火炖四十分钟即可。", {"食材": None, "烹饪时长": None},
     {"食材": ["土豆", "牛肉", "洋葱"], "烹饪时长": ["四十分钟"]}),
    ("unseen", "这个项目的后端用Go编写，前端基于React开发。", {"编程语言": None, "前端框架": None},
     {"编程语言": ["Go"], "前端框架": ["React"]}),
    ("unseen", "受台风杜苏芮影响，福建沿海明天将有大暴雨，最高气温28℃。", {"台风名称": None, "天气": None, "气温": None},
     {"台风名称": ["杜苏芮"], "天气": ["大暴雨"], "气温": ["28℃"]}),
    ("unseen", "她本科读的是新闻学，毕业后进入新华社工作。", {"专业": None, "工作单位": None},
     {"专业": ["新闻学"], "工作单位": ["新华社"]}),
    ("unseen", "小王在京东买了一台戴森吸尘器，花了2999元。", {"电商平台": None, "商品": None, "金额": None},
     {"电商平台": ["京东"], "商品": ["戴森吸尘器"], "金额": ["2999元"]}),
    ("unseen", "本次马拉松的冠军是基普乔格，成绩为2小时01分09秒。", {"选手": None, "成绩": None},
     {"选手": ["基普乔格"], "成绩": ["2小时01分09秒"]}),
    ("unseen", "苹果公司发布了搭载A17 Pro芯片的iPhone 15 Pro。", {"厂商": None, "芯片": None, "手机型号": None},
     {"厂商": ["苹果公司"], "芯片": ["A17 Pro"], "手机型号": ["iPhone 15 Pro"]}),
    # --- relations (nested nodes) ---
    ("relation", "鲁迅出生于浙江绍兴，代表作有《呐喊》和《彷徨》。", {"人物": ["出生地", "作品"]},
     {"人物": [("鲁迅", {"出生地": ["浙江绍兴"], "作品": ["《呐喊》", "《彷徨》"]})]}),
    ("relation", "马云创办了阿里巴巴，他的妻子是张瑛。", {"人物": ["妻子", "创办"]},
     {"人物": [("马云", {"妻子": ["张瑛"], "创办": ["阿里巴巴"]}), "张瑛"]}),
    ("relation", "《平凡的世界》是路遥创作的长篇小说，出版于1986年。", {"书名": ["作者", "出版时间"]},
     {"书名": [("《平凡的世界》", {"作者": ["路遥"], "出版时间": ["1986年"]})]}),
    ("relation", "华为公司的创始人是任正非，总部位于深圳。", {"公司": ["创始人", "总部地点"]},
     {"公司": [("华为公司", {"创始人": ["任正非"], "总部地点": ["深圳"]})]}),
    ("relation", "姚明出生于上海，身高2.26米，曾效力于休斯顿火箭队。", {"人物": ["出生地", "身高"]},
     {"人物": [("姚明", {"出生地": ["上海"], "身高": ["2.26米"]})]}),
    # --- opinions: aspect -> opinion words ---
    ("opinion", "这家酒店的位置很方便，但是房间太小了。", {"属性词": {"观点词": None}},
     {"属性词": [("位置", {"观点词": ["方便"]}), ("房间", {"观点词": ["小"]})]}),
    ("opinion", "手机屏幕清晰，电池续航一般，拍照效果很棒。", {"属性词": {"观点词": None}},
     {"属性词": [("屏幕", {"观点词": ["清晰"]}), ("电池续航", {"观点词": ["一般"]}), ("拍照效果", {"观点词": ["棒"]})]}),
    ("opinion", "外卖送得很快，味道也不错，就是包装有点简陋。", {"属性词": {"观点词": None}},
     {"属性词": [("外卖", {"观点词": ["快"]}), ("味道", {"观点词": ["不错"]}), ("包装", {"观点词": ["简陋"]})]}),
    ("opinion", "服务员态度冷淡，上菜速度慢。", {"属性词": {"观点词": None}},
     {"属性词": [("服务员态度", {"观点词": ["冷淡"]}), ("上菜速度", {"观点词": ["慢"]})]}),
    ("opinion", "这本书的故事情节跌宕起伏，人物刻画细腻。", {"评价对象": None},
     {"评价对象": ["故事情节", "人物刻画"]}),
    # --- the product brief's example ---
    ("brief", "华为Mate60 Pro搭载自研麒麟9000S芯片，支持卫星通话功能，起售价6999元。用户普遍反馈信号强、拍照清晰，"
              "但部分用户抱怨系统更新后电池续航下降明显。",
     {"产品名称": None, "芯片型号": None, "功能": None, "价格": None, "属性词": {"情感词": None}},
     {"产品名称": ["华为Mate60 Pro"], "芯片型号": ["麒麟9000S"], "功能": ["卫星通话"], "价格": ["6999元"],
      "属性词": [("信号", {"情感词": ["强"]}), ("拍照", {"情感词": ["清晰"]}), ("电池续航", {"情感词": ["下降明显"]})]}),
]


def locate(text: str, ref: str) -> tuple[str, int, int]:
    word, _, nth = ref.partition("@")
    at = -1
    for _ in range(int(nth or 1)):
        at = text.find(word, at + 1)
        if at < 0:
            raise ValueError(f"{ref!r} not in {text!r}")
    return word, at, at + len(word)


def spans(text: str, refs) -> list[dict]:
    out = []
    for ref in refs:
        ref, children = ref if isinstance(ref, tuple) else (ref, {})
        word, s, e = locate(text, ref)
        item = {"text": word, "start": s, "end": e}
        if children:
            item["relations"] = {k: spans(text, v) for k, v in children.items()}
        out.append(item)
    return out


def build() -> list[dict]:
    return [{"text": t, "schema": schema, "expected": {k: spans(t, v) for k, v in exp.items()}, "source": src}
            for src, t, schema, exp in ITEMS]


if __name__ == "__main__":
    out = Path(__file__).with_name("extract-handwritten.jsonl")
    lines = build()
    out.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    print(f"{out}: {len(lines)} lines")
