"""Deterministic demo data taken from the street's June 2020 work bulletin.

The projects, their 责任单位, the 6月22日 meeting and the bulletin's events are the bulletin's facts;
committees other than 新福康里 are made-up demo names (marked so in the workbook), and the
generated ledger rows make progress differ between committees.
"""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

from . import schema

DEMO_AS_OF = date(2020, 11, 15)
YEAR = 2020
PILOT_COMMITTEE = "C01"

# (项目编号, 类别, 项目名称, 责任单位, 指标, 指标单位, 目标值, 截止日期) — names and units as in the bulletin.
PROJECTS: list[tuple] = [
    ("P01", "健康社会类", "楼宇白领健康干预项目", "发展办、党建办、社区卫生服务中心",
     "白领健康干预服务人次", "人次", 3000, date(2020, 12, 15)),
    ("P02", "健康社会类", "康健工程项目", "发展办、社区卫生服务中心",
     "康健服务人次", "人次", 5000, date(2020, 11, 30)),
    ("P03", "健康社会类", "健康促进机关创建", "党政办、发展办、党群办（工会）",
     "健康促进活动场次", "场", 40, date(2020, 10, 31)),
    ("P04", "健康人群类", "楼宇控烟项目", "发展办、党建办、社区卫生服务中心",
     "无烟楼宇达标数", "幢", 40, date(2020, 12, 15)),
    ("P05", "健康人群类", "社区养老护理员健康技能培训项目", "服务办、社区卫生服务中心",
     "护理员培训人次", "人次", 260, date(2020, 10, 31)),
    ("P06", "健康服务类", "社区老年人健康体检项目", "发展办、服务办、社区卫生服务中心",
     "65周岁以上老年人体检人数", "人", 6500, date(2020, 11, 30)),
    ("P07", "健康服务类", "健康服务进校园", "社区卫生服务中心、中小学、幼托机构",
     "进校园健康服务场次", "场", 60, date(2020, 12, 15)),
]

DEMO_NAME_NOTE = "示例名称（演示数据）"
# (编号, 名称, 联系人, 进度快慢, 最后填报月份): pace 1.0 = on schedule.
COMMITTEES: list[tuple] = [
    ("C01", "新福康里居委会", "周敏", 1.05, 11),
    ("C02", "恒德里居委会", "陈佳", 0.95, 11),
    ("C03", "蒋家巷居委会", "王蕾", 0.90, 11),
    ("C04", "春平坊居委会", "李娟", 1.00, 11),
    ("C05", "联华居委会", "张伟", 0.80, 10),
    ("C06", "斯文里居委会", "刘洋", 0.65, 9),
    ("C07", "张园居委会", "杨静", 0.92, 11),
    ("C08", "华顺居委会", "赵磊", 0.45, 8),
    ("C09", "育明居委会", "黄芳", 0.98, 11),
    ("C10", "大中里居委会", "吴霞", 0.85, 10),
    ("C11", "景华居委会", "徐斌", 0.30, 7),
    ("C12", "太阳山居委会", "孙丽", 1.02, 11),
    ("C13", "三乐居委会", "马俊", 0.70, 9),
]

MEETINGS: list[dict] = [
    {
        "meeting_id": "M01",
        "name": "石门二路街道创建上海市首批健康街道试点工作会议",
        "date": date(2020, 6, 22),
        "start_time": "14:00",
        "place": "石门二路街道办事处会议室",
        "chair": "办事处主任 镇杨",
        "attendees": "党工委副书记马颖慧、办事处主任镇杨及街道党政班子领导，机关全体公务员、"
                     "各对应设置部门、各企事业单位、各居委会负责人",
        "agenda": "办事处副主任滕毅介绍试点建设背景，部署创建目标、组织机构、时间安排和工作内容；"
                  "党工委副书记马颖慧就做好健康街道创建试点工作讲话",
        "contact": "发展办 李敏",
        "phone": "021-62000000",
        "issuer": "石门二路街道办事处",
    },
    {
        "meeting_id": "M02",
        "name": "健康街道试点建设推进会",
        "date": date(2020, 11, 20),
        "start_time": "09:30",
        "place": "石门二路街道社区党群服务中心二楼会议室",
        "chair": "办事处副主任 滕毅",
        "attendees": "各责任单位负责人、各居委会主任",
        "agenda": "通报各项目和各居委会进度；滞后居委会说明情况；部署年底考核验收准备工作",
        "contact": "发展办 李敏",
        "phone": "021-62000000",
        "issuer": "石门二路街道办事处",
    },
]

SETTINGS: dict[str, object] = {
    "street": "石门二路街道",
    "pilot_name": "上海市首批健康街道试点",
    "year": YEAR,
    "issuer": "石门二路街道办事处",
    "doc_prefix": "石二街道",
    "doc_number": 3,
    "bulletin_name": "健康石二工作简报",
    "contact": "发展办 李敏",
    "phone": "021-62000000",
}

# The bulletin's events as ledger rows of the pilot committee (date, project, activity,
# participants, quantity as typed, status, note).
BULLETIN_EVENTS: list[tuple] = [
    (date(2020, 6, 2), "P03",
     "党工委中心组赴崇明竖河镇大烧杀遗址参观学习，并与新村乡开展城乡党组织结对帮扶",
     16, 1, "已完成", "向新村乡赠送帮扶资金30万元"),
    (date(2020, 6, 11), "P03", "居民区党总支书记赴北站街道参观学习党建引领社区治理经验",
     15, 1, "已完成", "街道自治办组织"),
    (date(2020, 6, 22), "P03", "参加街道创建上海市首批健康街道试点工作会议", 120, 1, "已完成",
     "新福康里居委会为静安区唯一入选居委会"),
    (date(2020, 6, 24), "P03", "居委会主任赴江宁路街道参观学习美丽楼组建设", 16, 1, "已完成",
     "街道自治办组织"),
    (date(2020, 6, 28), "P02",
     "民族宗教法制宣传月：志愿者为困难群体、一线工作人员、社区老人和残疾人上门理发",
     60, "800余次", "进行中", "数量为约数"),
    (date(2020, 6, 18), "P06", "65周岁以上老年人健康体检", 320, 320, "进行中", "社区卫生服务中心配合"),
    (date(2020, 6, 16), "P01", "“白领健康大讲堂”进楼宇", 85, 85, "进行中", ""),
    (date(2020, 6, 19), "P07", "联合社区卫生服务中心开展健康服务进校园宣传教育", 200, 1, "进行中", ""),
]

ARTICLE_ISSUE = 6
# The seed's articles. Its "caption"s are its photos' captions: the demo ships no photos, and a
# caption without its picture prints nothing (validate warns of one), so the demo workbook leaves
# 图片说明 blank; whoever adds the photos types them (the picture tests do).
ARTICLES: list[dict] = [
    {
        "title": "凝聚各方力量 共同推进“健康石二”建设——街道召开创建上海市首批健康街道试点工作会议",
        "body": (
            "6月22日，石门二路街道召开创建上海市首批健康街道试点工作会议，动员全街道共同推进"
            "“健康石二”建设。党工委副书记马颖慧、办事处主任镇杨及街道党政班子领导，机关全体公务员、"
            "各对应设置部门、各企事业单位和各居委会负责人参加会议。\n"
            "全市共遴选24个镇（街道）和112个村（居）委会、136个单位参与首批试点，石门二路街道和"
            "新福康里居委会分别是静安区唯一入选的街道和居委会。\n"
            "马颖慧在会上提出三点要求：结合“共同家园·基石工程”，坚持党建引领；结合社区实际，"
            "对学龄前儿童、青少年、白领和老年人分类指导；结合疫情防控，做到慎终如始。"
            "办事处副主任滕毅介绍了试点背景，并就创建目标、组织机构、时间安排和工作内容作具体部署。"
        ),
        "source_unit": "街道发展办",
        "caption": "会议现场",
        "event_date": date(2020, 6, 22),
    },
    {
        "title": "街道各居委会主任赴江宁路街道参观学习",
        "body": (
            "6月24日下午，办事处副主任陈功带领社区自治办、黄蕙芬自治家园工作室和各居委会主任，"
            "赴江宁路街道学习美丽楼组建设，江宁路街道办事处副主任林昱炜一行接待。\n"
            "大家先后参观了教师公寓楼组和达安锦园（南区）楼组，了解楼组微项目、志愿公益活动和"
            "楼组居民公约的做法，并在新安居委会活动室听取江宁路街道在楼组长队伍建设方面的经验，"
            "围绕“基石工程”和“共同家园”建设中的美丽楼组创建进行了交流。"
        ),
        "source_unit": "街道自治办",
        "caption": "各居委会主任在江宁路街道参观学习",
        "event_date": date(2020, 6, 24),
    },
    {
        "title": "街道各居民区书记赴北站街道参观学习",
        "body": (
            "6月11日下午，办事处副主任陈功带领社区自治办、黄蕙芬自治家园工作室和各居民区党总支书记"
            "赴北站街道参观学习。\n"
            "在永顺居民区，党总支书记樊玉华介绍了党建引领居民自治的做法；在北站街道党群服务中心，"
            "大家了解了“四环共建，5G联动”的区域化党建模式，并就居民区党建和社区治理座谈交流。"
            "一行人还参观了上海总商会旧址，接受“四史”教育。"
        ),
        "source_unit": "街道自治办",
        "caption": "",
        "event_date": date(2020, 6, 11),
    },
    {
        "title": "街道党工委中心组赴崇明开展参观学习和结对帮扶活动",
        "body": (
            "6月2日下午，街道党工委中心组参观了侵华日军竖河镇大烧杀遗址及遇难同胞纪念馆，"
            "随后赴崇明区新村乡开展城乡党组织结对帮扶。\n"
            "在新村乡班子成员陪同下，一行人考察了新村稻米文化中心和冠华喜时生活体验馆。"
            "座谈中，街道向新村乡赠送帮扶资金30万元，双方将继续加强学习交流，深化结对共建。"
        ),
        "source_unit": "街道党群办",
        "caption": "街道党工委中心组赴崇明竖河镇大烧杀遗址",
        "event_date": date(2020, 6, 2),
    },
    {
        "title": "石门二路街道开展民族宗教法制宣传月系列活动",
        "body": (
            "6月以来，街道开展“民族宗教法制宣传学习月”活动。党工委中心组举行专题学习会，"
            "邀请市民宗局民族一处处长姜斌作专题讲座。\n"
            "街道坚持由民族联成员上门关爱少数民族儿童，发挥清真餐饮店和“少数民族服务联络点”的作用"
            "开展政策宣传。少数民族青年骨干带动志愿者为困难群体配送蔬菜，为一线工作人员、社区老人和"
            "残疾人上门理发800余次。"
        ),
        "source_unit": "街道党群办",
        "caption": "",
        "event_date": date(2020, 6, 28),
    },
]


ACTIVITIES: dict[str, tuple[str, ...]] = {
    "P01": ("“白领健康大讲堂”进楼宇", "楼宇白领健康咨询义诊", "白领健康自我管理小组活动"),
    "P02": ("为老年人上门理发", "康健驿站健康自测服务", "社区康复指导"),
    "P03": ("机关健康知识讲座", "机关工间操推广", "机关健康促进主题活动"),
    "P04": ("楼宇控烟巡查", "无烟楼宇创建指导", "控烟宣传进楼宇"),
    "P05": ("养老护理员健康技能培训", "护理员急救技能实操培训", "护理员心理健康辅导"),
    "P06": ("65周岁以上老年人健康体检", "老年人体检报告解读", "体检异常老人随访"),
    "P07": ("健康服务进校园宣传教育", "中小学生健康讲座", "幼托机构健康检查"),
}
PEOPLE_UNITS = ("人次", "人")


def committee_targets() -> dict[tuple[str, str], int]:
    """Per-committee targets for the checkup project (P06), summing to its street-wide target."""
    weights = [9, 8, 6, 7, 8, 7, 8, 6, 7, 8, 7, 7, 12]
    total = next(p[6] for p in PROJECTS if p[0] == "P06")
    shares = [total * w // sum(weights) for w in weights]
    shares[0] += total - sum(shares)
    return {("P06", c[0]): s for c, s in zip(COMMITTEES, shares)}


def _generated_rows(rng: random.Random) -> list[dict]:
    """Rows that make committees differ: pace scales what each achieved by the demo date."""
    targets = committee_targets()
    elapsed = (DEMO_AS_OF - date(YEAR, 1, 1)).days / 365
    rows: list[dict] = []
    for cid, _name, reporter, pace, last_month in COMMITTEES:
        last_day = min(date(YEAR, last_month, 28), DEMO_AS_OF - timedelta(days=2))
        for pid, _cat, _pname, _units, _indicator, unit, target, deadline in PROJECTS:
            share = targets.get((pid, cid), target / len(COMMITTEES))
            achieved = max(1, round(share * elapsed * pace * rng.uniform(0.9, 1.1)))
            if deadline < DEMO_AS_OF and pace >= 0.95:
                achieved = max(achieved, math.ceil(share))  # keen committees met the early deadlines
            entries = min(rng.randint(2, 6), achieved)
            cuts = sorted(rng.sample(range(1, achieved), entries - 1))
            amounts = [b - a for a, b in zip([0, *cuts], [*cuts, achieved])]
            span = (min(last_day, deadline) - date(YEAR, 2, 1)).days
            days = sorted(rng.sample(range(span), entries))
            done = achieved >= share
            for i, (amount, offset) in enumerate(zip(amounts, days)):
                last = i == entries - 1
                status = "已完成" if (done and last) else "进行中"
                if pace < 0.6 and last and deadline < DEMO_AS_OF:
                    status = "延期"
                rows.append({
                    "date": date(YEAR, 2, 1) + timedelta(days=offset),
                    "committee_id": cid,
                    "project_id": pid,
                    "activity": rng.choice(ACTIVITIES[pid]),
                    "participants": amount if unit in PEOPLE_UNITS else rng.randint(15, 80),
                    "quantity": amount,
                    "status": status,
                    "reporter": reporter,
                    "in_bulletin": "否",
                    "note": "",
                })
    return rows


def ledger_rows() -> list[dict]:
    """Every demo ledger row, numbered ``<居委会编号>-<4 digits>`` in date order per committee."""
    rng = random.Random(20200622)
    reporter = COMMITTEES[0][2]
    rows = [
        {
            "date": day, "committee_id": PILOT_COMMITTEE, "project_id": pid, "activity": text,
            "participants": people, "quantity": qty, "status": status, "reporter": reporter,
            "in_bulletin": "是", "note": note,
        }
        for day, pid, text, people, qty, status, note in BULLETIN_EVENTS
    ]
    rows += _generated_rows(rng)
    rows.sort(key=lambda r: (r["committee_id"], r["date"], r["project_id"]))
    counters: dict[str, int] = {}
    for row in rows:
        n = counters[row["committee_id"]] = counters.get(row["committee_id"], 0) + 1
        row["record_id"] = f"{row['committee_id']}-{n:04d}"
        row["source"] = schema.MANUAL_SOURCE
    rows.sort(key=lambda r: (r["date"], r["record_id"]))
    return rows


def demo_rows(with_ledger: bool = True) -> dict[str, list[dict]]:
    """Rows for each input sheet, keyed by sheet name, values keyed by column key."""
    projects = [
        dict(zip(("project_id", "category", "name", "units", "indicator", "indicator_unit",
                  "target", "deadline"), p))
        for p in PROJECTS
    ]
    committees = [
        {
            "committee_id": cid, "name": name, "contact": contact,
            "phone": f"021-6200{int(cid[1:]):04d}", "email": f"{cid.lower()}@example.org",
            "pilot": "是" if cid == PILOT_COMMITTEE else "否",
            "note": "健康居委会试点（见简报）" if cid == PILOT_COMMITTEE else DEMO_NAME_NOTE,
        }
        for cid, name, contact, _pace, _month in COMMITTEES
    ]
    targets = [
        {"project_id": pid, "committee_id": cid, "target": value}
        for (pid, cid), value in committee_targets().items()
    ]
    ledger = ledger_rows() if with_ledger else []
    by_date = {}
    for row in ledger:
        if row["committee_id"] == PILOT_COMMITTEE and row["in_bulletin"] == "是":
            by_date.setdefault(row["date"], row["record_id"])
    articles = [
        {
            "article_id": f"A{i:02d}", "issue": ARTICLE_ISSUE, "title": a["title"],
            "body": a["body"], "source_unit": a["source_unit"], "caption": "",
            "record_ids": by_date.get(a["event_date"], ""), "image": "",
        }
        for i, a in enumerate(ARTICLES, 1)
    ]
    return {
        schema.PROJECTS.name: projects,
        schema.COMMITTEES.name: committees,
        schema.TARGETS.name: targets,
        schema.LEDGER.name: ledger,
        schema.MEETINGS.name: [dict(m) for m in MEETINGS],
        schema.ARTICLES.name: articles,
        schema.SETTINGS.name: settings_rows(SETTINGS),
    }


# What the demo invented rather than took from the street's bulletin: left blank in a starter
# workbook, so that none of it goes out on a real notice unnoticed.
INVENTED_PROJECT_KEYS = ("target", "deadline")
INVENTED_COMMITTEE_KEYS = ("contact", "phone", "email", "note")
INVENTED_SETTING_KEYS = ("contact", "phone", "doc_number")


def starter_rows(year: int) -> dict[str, list[dict]]:
    """``init --empty``: the street's projects and committees and its settings, to start a real
    master. Targets, deadlines, contacts, the ledger, meetings and bulletin articles — the demo's
    inventions and the June 2020 events — are left for the office to fill in."""
    rows = demo_rows(with_ledger=False)
    for project in rows[schema.PROJECTS.name]:
        project.update(dict.fromkeys(INVENTED_PROJECT_KEYS))
    for committee in rows[schema.COMMITTEES.name]:
        committee.update(dict.fromkeys(INVENTED_COMMITTEE_KEYS))
    settings = {k: v for k, v in SETTINGS.items() if k not in INVENTED_SETTING_KEYS}
    rows[schema.SETTINGS.name] = settings_rows({**settings, "year": year})
    for sheet in (schema.TARGETS, schema.LEDGER, schema.MEETINGS, schema.ARTICLES):
        rows[sheet.name] = []
    return rows


def settings_rows(values: dict[str, object]) -> list[dict]:
    """设置 rows for every known setting, ``values`` (by setting key) over the defaults."""
    return [
        {"item": s.item, "value": values.get(s.key, s.default), "help": s.help}
        for s in schema.SETTING_ITEMS
    ]
