"""Every word a user reads or types: reply templates, command words, category names.

No other module holds Chinese text. Templates use named placeholders. Replies to residents are
short and plain: many of them are elderly.
"""

from __future__ import annotations

from enum import StrEnum


class Keyword(StrEnum):
    """Command words as typed; `ALIASES` maps the slash forms and synonyms onto them."""

    HELP = "帮助"
    WISH = "许愿"
    MINE = "我的心愿"
    TRACK = "进度"
    CANCEL = "取消"
    PRIVATE = "不公开"
    RATE = "评价"
    SOLVED = "已解决"
    PARTLY = "部分解决"
    UNSOLVED = "未解决"
    LINK = "关联"
    CONSENT = "监护人同意"
    BIND = "绑定"
    SKILLS = "特长"
    HALL = "大厅"
    CLAIM = "认领"
    CONTACTED = "已联系"
    DONE = "完成"
    RELEASE = "放弃"
    MY_CLAIMS = "我的认领"
    PENDING = "待审"
    APPROVE = "通过"
    REJECT = "驳回"
    DEFER = "暂缓"
    ASSIGN = "转办"
    CLOSE = "销号"
    VISIT = "回访"
    PROXY = "代办"
    STATS = "统计"
    MERGE = "合并"
    APPROVE_COST = "批准"


ALIASES: dict[str, Keyword] = {
    "/help": Keyword.HELP, "help": Keyword.HELP, "?": Keyword.HELP, "？": Keyword.HELP,
    "心愿": Keyword.WISH, "/wish": Keyword.WISH,
    "/mine": Keyword.MINE,
    "/track": Keyword.TRACK,
    "/cancel": Keyword.CANCEL,
    "/private": Keyword.PRIVATE,
    "/rate": Keyword.RATE,
    "/solved": Keyword.SOLVED, "/partly": Keyword.PARTLY, "/unsolved": Keyword.UNSOLVED,
    "/link": Keyword.LINK, "/consent": Keyword.CONSENT,
    "/bind": Keyword.BIND, "/skills": Keyword.SKILLS, "/open": Keyword.HALL,
    "/claim": Keyword.CLAIM, "/contacted": Keyword.CONTACTED, "/done": Keyword.DONE,
    "/release": Keyword.RELEASE, "/claims": Keyword.MY_CLAIMS,
    "/pending": Keyword.PENDING, "/approve": Keyword.APPROVE, "/reject": Keyword.REJECT,
    "/defer": Keyword.DEFER, "/assign": Keyword.ASSIGN, "/close": Keyword.CLOSE,
    "/visit": Keyword.VISIT, "/proxy": Keyword.PROXY, "/stats": Keyword.STATS,
    "/merge": Keyword.MERGE, "/approve-cost": Keyword.APPROVE_COST,
}

# Dialogue words (interface: "Dialogue words").
CONFIRM_WORDS = frozenset({"确认", "是", "对", "好", "好的", "y", "yes", "ok"})
SKIP_WORDS = frozenset({"跳过", "无", "没有", "skip"})
LEAVE_WORDS = frozenset({"取消", "退出", "/cancel", "/quit", "quit", "exit"})

TIER_WORDS = {"个性": "personal", "共性": "common", "老大难": "legacy",
              "personal": "personal", "common": "common", "legacy": "legacy"}
TIER_NAMES = {"personal": "个性", "common": "共性", "legacy": "老大难"}
FEEDBACK_WORDS = {"已解决": "solved", "部分解决": "partly", "未解决": "unsolved",
                  "solved": "solved", "partly": "partly", "not": "unsolved", "unsolved": "unsolved"}
MINOR_WORD = "未成年"

STATUS_NAMES = {
    "submitted": "待登记", "published": "待认领", "claimed": "已认领", "fulfilled": "已完成",
    "rated": "已回访", "closed": "已销号", "rejected": "未通过", "deferred": "暂缓办理",
    "assigned": "已转办", "cancelled": "已撤回",
}
ACTION_NAMES = {
    "submit": "提交心愿", "approve": "登记发布", "reject": "未通过", "defer": "暂缓办理", "assign": "转交办理",
    "cancel": "撤回", "claim": "党员认领", "release": "放弃认领", "lapse": "认领失效，重新发布",
    "fulfil": "心愿完成", "rate": "群众评价", "visit": "电话/上门回访", "reopen": "重新办理", "close": "销号",
    "evidence": "上传照片", "contacted": "已联系群众", "consent": "监护人同意", "transcribe": "语音转文字",
    "category": "调整类别", "repost": "再次发布", "phone_visit": "列入电话回访",
}
ROLE_NAMES = {"resident": "群众", "member": "党员", "admin": "管理员", "system": "系统"}

CATEGORIES = ("助老陪伴", "助学", "助残", "就业", "生活物资", "维修", "医疗健康", "法律咨询", "心理疏导", "环境设施", "其他")

# ---------------------------------------------------------------------------------------------
# General
WELCOME = (
    "您好，欢迎关注微心愿！\n"
    "有什么困难或心愿，直接发“许愿 加上您的心愿”，比如：\n"
    "许愿 想请人帮忙修一下家里的水龙头\n"
    "党员同志会来认领，办好后我们会回访。发“帮助”看全部用法。"
)
HINT = "没看懂您的意思。想许愿请发“许愿 加上您的心愿”，发“帮助”看全部用法。"
SORRY = "抱歉，系统有点忙，请稍后再发一次。"
BUSY_LATER = "已收到，正在处理，结果稍后发给您。"
NOT_TEXT = "已收到。目前请用文字发送心愿，发“帮助”看用法。"
UNKNOWN_NUMBER = "没有找到编号为 {code} 的心愿，请核对编号。"
NEED_NUMBER = "请在命令后写上心愿编号，例如：{example}"
BAD_NUMBER = "“{text}”不是有效的心愿编号。编号是数字，例如 12。"

HELP_RESIDENT = (
    "【微心愿 使用方法】\n"
    "许愿 内容 —— 提交心愿（只发“许愿”会一步步问您）\n"
    "我的心愿 —— 查看我提交的心愿\n"
    "进度 编号 —— 像查快递一样看办理进度\n"
    "取消 编号 —— 撤回还没人认领的心愿\n"
    "不公开 编号 —— 不在心愿墙展示\n"
    "评价 编号 1-5 —— 给办理结果打分\n"
    "已解决 / 部分解决 / 未解决 —— 回答回访"
)
HELP_MEMBER = (
    "\n【党员】\n"
    "大厅 —— 待认领的心愿\n"
    "认领 编号 [天数] —— 认领并承诺完成时间\n"
    "已联系 编号 —— 记录已联系群众\n"
    "完成 编号 说明 —— 报告完成，可再发照片\n"
    "放弃 编号 原因 —— 退回大厅\n"
    "我的认领 —— 我的认领和期限\n"
    "特长 标签… —— 设置特长，便于推荐"
)
HELP_MEMBER_BIND = "\n党员同志请先发“绑定 邀请码 姓名”。"
HELP_ADMIN = (
    "\n【管理员】\n"
    "待审 —— 待登记的心愿\n"
    "通过 编号 [个性|共性|老大难] —— 登记发布或转交\n"
    "驳回 编号 原因 / 暂缓 编号 说明 / 转办 编号 单位\n"
    "回访 编号 已解决|部分解决|未解决 [1-5] [说明]\n"
    "销号 编号 —— 销号\n"
    "代办 —— 替群众登记心愿\n"
    "统计 —— 当前数据"
)

# ---------------------------------------------------------------------------------------------
# Residents: submitting
WISH_OK = "心愿已收到，编号 {code}。\n我们登记后会发布给党员认领，发“进度 {code}”可随时查看。"
WISH_OK_WALL = "\n办理情况会隐去个人信息后在心愿墙公示；不想公示请发“不公开 {code}”。"
WISH_TOO_SHORT = "心愿太短了，请至少写{min}个字，说清楚需要什么帮助。"
WISH_TOO_LONG = "心愿太长了，请控制在{max}个字以内。"
WISH_EMPTY = "请在“许愿”后面写上您的心愿，例如：许愿 想请人陪我去医院复查"
WISH_TOO_MANY_OPEN = "您已有{n}个心愿正在办理，请等办完后再提交新的。发“我的心愿”查看。"
WISH_TOO_MANY_TODAY = "您今天已提交{n}次心愿，请明天再来。"
WISH_SIMILAR = "这个心愿和您的 {code} 号心愿很像：\n“{text}”\n仍要提交请回复“确认”，不提交请回复“取消”。"
WISH_DUP_CANCELLED = "好的，没有提交。"

DLG_ASK_CONTENT = "请说说您的心愿：需要什么帮助？（回复“取消”可随时退出）"
DLG_ASK_CATEGORY = "您的心愿属于“{category}”，对吗？\n对请回复“确认”，不对请回复类别名称：\n{categories}"
DLG_BAD_CATEGORY = "没有这个类别。请回复以下之一，或回复“确认”：\n{categories}"
DLG_ASK_PHONE = "方便留个联系电话吗？只有认领的党员能看到。不留请回复“跳过”。"
DLG_BAD_PHONE = "电话号码好像不对，请重新输入，或回复“跳过”。"
DLG_ASK_COMMUNITY = "您住在哪个社区？可以直接发位置，或写社区名称。不填请回复“跳过”。"
DLG_ASK_MINOR = "这个心愿是否涉及未成年孩子？请回复“是”或“否”。"
DLG_LEFT = "好的，已退出，没有提交。"
DLG_EXPIRED = "上次的填写已超时，请重新开始。"

# Residents: following
MINE_EMPTY = "您还没有提交过心愿。发“许愿 内容”试试。"
MINE_HEADER = "您的心愿："
MINE_LINE = "{code}号 {status}：{text}"
TRACK_HEADER = "心愿 {code}（{status}）\n{text}"
TRACK_LINE = "{time} {step}{who}"
TRACK_WHO = "（{name}）"
TRACK_NOT_YOURS = "只能查看自己的心愿。编号 {code} 不是您提交的。"
TRACK_SAFETY = "上门安全码：{safety_code}（党员上门时会说出这个码）"
CANCEL_OK = "已撤回 {code} 号心愿。"
PRIVATE_OK = "好的，{code} 号心愿不会在心愿墙展示。"
RATE_OK = "谢谢您的评价！{code} 号心愿 {stars}。"
RATE_LOW = "谢谢您的反馈，很抱歉没让您满意。我们会重新安排办理 {code} 号心愿。"
RATE_BAD_SCORE = "请打1到5分，例如：评价 {code} 5"
RATE_NOTHING_OPEN = "您目前没有需要评价的心愿。"
FEEDBACK_OK = "谢谢您告诉我们，{code} 号心愿已记录为“{answer}”。"
FEEDBACK_NAMES = {"solved": "已解决", "partly": "部分解决", "unsolved": "未解决"}

# Notices to residents (outbox)
NOTICE_APPROVED = "您的 {code} 号心愿已登记发布，等待党员认领。"
NOTICE_ROUTED = "您的 {code} 号心愿已登记为{tier}问题，交由“{unit}”办理。"
NOTICE_REJECTED = "很抱歉，您的 {code} 号心愿暂时无法受理。原因：{reason}"
NOTICE_DEFERRED = "您的 {code} 号心愿目前暂时难以办理，已登记存档，条件成熟时会再办理。说明：{reason}"
NOTICE_ASSIGNED = "您的 {code} 号心愿已转交“{unit}”办理。"
NOTICE_CLAIMED = "好消息！您的 {code} 号心愿已由{branch}的{name}认领，承诺在{due}前办好。"
NOTICE_RELEASED = "您的 {code} 号心愿重新等待认领，我们会尽快安排。"
NOTICE_FULFILLED = "您的 {code} 号心愿已办好：{note}\n请回复 1-5 打分（5分最满意），或回复“已解决/部分解决/未解决”。"
NOTICE_CLOSED = "您的 {code} 号心愿已办结销号，谢谢您的信任！"
NOTICE_REOPENED = "您的 {code} 号心愿会继续办理。"

# ---------------------------------------------------------------------------------------------
# Role refusals and errors shared by every role
NEED_MEMBER = "这个命令是党员用的。党员同志请先发“绑定 邀请码 姓名”完成绑定。"
NEED_ADMIN = "这个命令只有管理员可以使用。"
ILLEGAL_TRANSITION = "{code} 号心愿现在是“{status}”，不能{action}。"
NOT_ALLOWED = "您不能对 {code} 号心愿{action}。"
WISH_CHANGED = "{code} 号心愿刚刚被别人处理了，请发“进度 {code}”看最新状态。"
NOT_YOUR_WISH = "{code} 号心愿不是您的，不能{action}。"

# Admins
PENDING_EMPTY = "目前没有待登记的心愿。"
PENDING_HEADER = "待登记的心愿（{n}）："
PENDING_LINE = "{code}号 [{category}] {text}"
APPROVE_OK = "{code} 号心愿已登记为{tier}并发布。"
ROUTE_OK = "{code} 号心愿已登记为{tier}问题。请用“转办 {code} 单位”交给负责单位。"
REJECT_OK = "已驳回 {code} 号心愿，原因已告知群众。"
DEFER_OK = "{code} 号心愿已暂缓存档，说明已告知群众。"
ASSIGN_OK = "{code} 号心愿已转交“{unit}”。"
CLOSE_OK = "{code} 号心愿已销号。"
CLOSE_NEEDS_VISIT = "{code} 号心愿还没有回访结果，不能销号。请等群众评价，或先记录“回访 {code} 已解决 5”。"
NEED_REASON = "请写明原因，例如：{example}"
NEED_UNIT = "请写明承办单位，例如：转办 {code} 区住建局"
STATS_TEXT = (
    "【当前数据】\n心愿总数 {total}\n待登记 {submitted}｜待认领 {published}｜已认领 {claimed}\n"
    "已完成 {fulfilled}｜已回访 {rated}｜已销号 {closed}\n暂缓 {deferred}｜转办 {assigned}｜驳回 {rejected}｜撤回 {cancelled}\n"
    "待发消息 {outbox_pending}｜发送失败 {outbox_dead}"
)

# ---------------------------------------------------------------------------------------------
# === Members: binding, hall, claims, channel posts (issue 4) ===
UNKNOWN_COMMUNITY = "未填社区"
CHANNEL_POST = "### 微心愿 {code}号 [{category}]\n> 社区：{community}\n> {text}\n{waited}\n认领请回复公众号：**认领 {code}**"

# ---------------------------------------------------------------------------------------------
# === Outbox, sandbox, menu (issue 5) ===

# ---------------------------------------------------------------------------------------------
# === Schedules: return visits, reminders, digests (issue 6) ===

# ---------------------------------------------------------------------------------------------
# === Dashboard, ledger (issue 7) ===

# ---------------------------------------------------------------------------------------------
# === Promises, safety, proxies, flags (issue 9) ===

# ---------------------------------------------------------------------------------------------
# === Wall, budgets (issue 10) ===

# ---------------------------------------------------------------------------------------------
# Masking
MASK_PHONE = "[电话]"
MASK_ID = "[证件号]"
MASK_ADDRESS = "[门牌]"
