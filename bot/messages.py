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
    "fulfil": "心愿完成", "rate": "群众评价", "visit": "电话/上门回访", "reopen": "重新办理", "rework": "退回承办单位重办", "close": "销号",
    "evidence": "上传照片", "contacted": "已联系群众", "consent": "监护人同意", "transcribe": "语音转文字",
    "category": "调整类别", "repost": "再次发布", "phone_visit": "列入电话回访",
    "await_consent": "登记，等待监护人同意",
    "merge": "合并为共性问题", "link": "群众关联微信",
    "cost_estimate": "登记预估费用", "cost": "记录费用", "cost_pending": "费用超出预算，等待批准",
    "approve_cost": "批准费用",
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
    "已解决 / 部分解决 / 未解决 —— 回答回访\n"
    "监护人同意 —— 涉及孩子的心愿，监护人同意后才发布\n"
    "不方便打字？直接发语音也能许愿\n"
    "关联 编号 手机号后四位 —— 领回别人替您登记的心愿"
)
HELP_MEMBER = (
    "\n【党员】\n"
    "大厅 —— 待认领的心愿\n"
    "认领 编号 [天数] [协助 姓名…] —— 认领，承诺联系和完成时间\n"
    "已联系 编号 —— 记录已联系群众\n"
    "完成 编号 说明 [费用 金额] —— 报告完成，可再发照片（凭证）\n"
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
    "统计 —— 当前数据\n"
    "监护人同意 编号 —— 记录监护人同意（涉及未成年人的心愿）\n"
    "合并 编号,编号 单位 —— 相似心愿合并为共性问题转办\n"
    "批准 编号 —— 批准超出社区剩余预算的费用"
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
# === Lifecycle, the wish dialogue, tracking, admin commands (issue 3) ===
DLG_CATEGORY_SEPARATOR = "、"
DLG_DONE_SIMILAR_CONFIRMED = "好的，照常提交。"
WISH_SIMILAR_AGAIN = "请回复“确认”提交，或回复“取消”不提交。"
TRACK_YOU = "本人"
TRACK_MEMBER = "{branch}{name}"
TRACK_MEMBER_UNNAMED = "党员"
TRACK_NOTE = "：{note}"
TRACK_UNIT = "\n承办单位：{unit}"
MINE_MORE = "\n发“进度 编号”查看详细进度。"
PRIVATE_NOT_YOURS_ACTION = "设为不公开"
CANCEL_ACTION = "撤回"
RATE_ACTION = "评价"
TRACK_ACTION = "查看"
RATE_CLOSED_TAIL = "\n心愿已办结销号，谢谢您的信任！"
FEEDBACK_REOPENED_TAIL = "\n我们会继续办理，有进展会告诉您。"
FEEDBACK_NOTHING_OPEN = "您目前没有等待回访的心愿。"
NOTICE_PROGRESS_ROUTED = "您的 {code} 号心愿已登记为{tier}问题，将交给相关单位办理。"
NOTICE_VISIT_RECORDED = "您的 {code} 号心愿回访已记录：{answer}。谢谢您的反馈！"
NOTICE_REASSIGNED_CLAIMER = "{code} 号心愿已由管理员转交“{unit}”办理，您的认领已结束，谢谢您！"
NOTICE_REOPENED_CLAIMER = "{code} 号心愿群众反馈“{answer}”：{words}\n请继续办理，办好后再发“完成 {code} 说明”。"
ALERT_REOPENED = "【回访反馈：需继续办理】{code} 号心愿群众反馈“{answer}”{rating}：{words}\n已退回{back}继续办理。"
ALERT_RATING = "（{rating}分）"
ALERT_BACK_CLAIMER = "认领党员"
ALERT_BACK_UNIT = "承办单位“{unit}”"
ALERT_NO_WORDS = "（未留言）"
APPROVE_USAGE = "看不懂“{word}”。请写：通过 {code} [个性|共性|老大难] [未成年] [类别] [承办单位]\n类别：{categories}"
APPROVE_CATEGORY_TAIL = "类别：{category}。"
PENDING_TIER = "（{tier}，待转办）"
PENDING_MINOR = "（涉及未成年人）"
VISIT_USAGE = "请写明回访结果，例如：回访 {code} 已解决 5 群众很满意"
VISIT_BY_CLAIMER = "您是 {code} 号心愿的认领人，回访要由其他管理员来做。"
VISIT_OK = "已记录 {code} 号心愿的回访：{answer}{rating}。"
VISIT_CLOSE_HINT = "可以发“销号 {code}”办结。"
VISIT_REOPENED = "心愿已退回继续办理。"
STATS_SECTION_SEPARATOR = "\n"
COMMUNITY_SUFFIX = "社区"
REJECT_EXAMPLE = "驳回 {code} 不属于微心愿范围"
DEFER_EXAMPLE = "暂缓 {code} 需要等明年预算"
RATE_STAR = "★"
MINOR_HINT_WORDS = ("孩子", "儿子", "女儿", "小孩", "学生", "未成年", "孙子", "孙女", "外孙")
NO_WORDS = frozenset({"否", "不是", "不", "没有", "no", "n"})
COMMUNITY_STOP_CHARS = "省市区县镇乡村道路街巷号"

# ---------------------------------------------------------------------------------------------
# === Members: binding, hall, claims, channel posts (issue 4) ===
UNKNOWN_COMMUNITY = "未填社区"
CHANNEL_POST = "### 微心愿 {code}号 [{category}]\n> 社区：{community}\n> {text}\n{waited}\n认领请回复公众号：**认领 {code}**"
CHANNEL_REPOST = "### 重新待认领 微心愿 {code}号 [{category}]\n> 社区：{community}\n> {text}\n{waited}\n认领请回复公众号：**认领 {code}**"
CHANNEL_CLAIMED = "微心愿 {code}号 已由{branch}的{name}认领，谢谢！"
WAITED = "已等待{span}"
WAITED_JUST_NOW = "刚刚提交"
SPAN_DAYS_HOURS = "{days}天{hours}小时"
SPAN_DAYS = "{days}天"
SPAN_HOURS = "{hours}小时"
SPAN_MINUTES = "{minutes}分钟"
NO_BRANCH = "党支部"
NO_NAME = "党员"

# Binding and skills
BIND_USAGE = "请发“绑定 邀请码 姓名”，例如：绑定 AB3D5F7H 张三"
BIND_BAD_CODE = "邀请码“{code}”无效，请核对后再发。"
BIND_USED_CODE = "邀请码“{code}”已经用过了，请向支部要一个新的。"
BIND_EXPIRED_CODE = "邀请码“{code}”已过期，请向支部要一个新的。"
BIND_ALREADY = "您已经是{branch}的党员了，不用再绑定。"
BIND_ADMIN = "管理员账号不能绑定为党员。"
BIND_ASK_NAME = "请问您的姓名？（回复“取消”可退出）"
BIND_BAD_NAME = "姓名请写1到20个字。"
BIND_LEFT = "好的，已退出绑定。"
BIND_OK = "绑定成功！{name}同志，您已加入{branch}。\n发“大厅”看待认领的心愿，发“特长 维修 助老陪伴”设置特长，方便为您推荐。"
SKILLS_USAGE = "请写上您的特长，用空格隔开，例如：特长 维修 助老陪伴 法律咨询"
SKILLS_OK = "已记下您的特长：{skills}。有相关心愿时会优先推荐给您。"

# Hall, claims, reports
HALL_EMPTY = "大厅里暂时没有待认领的心愿，谢谢关注！"
HALL_HEADER = "待认领的心愿（最适合您的在前）："
HALL_LINE = "{code}号 [{category}] {community}｜{text}（{waited}）"
HALL_FOOTER = "认领请发“认领 编号 [天数]”，例如：认领 {code} 7"
CLAIM_BAD_DAYS = "天数请写1到{max}之间的数字，例如：认领 {code} 7"
CLAIM_TOO_MANY = "您已有{n}个认领还没办完（{codes}），最多同时认领{max}个。请先办完或放弃一个再认领。"
CLAIM_ALREADY_YOURS = "{code} 号心愿您已经认领了，请在{due}前办好。"
CLAIM_FASTER = "慢了一步：{code} 号心愿刚刚已由{branch}的{name}认领。"
CLAIM_NEXT_BEST = "\n为您推荐：{code}号 [{category}] {text}\n认领请发“认领 {code}”"
CLAIM_NOT_PERSONAL = "{code} 号心愿不在认领大厅，不能认领。"
CLAIM_OK = "认领成功！{code} 号心愿请在{due}前办好。群众的联系方式已单独发给您。"
CLAIM_DETAILS = "【{code}号心愿 详细信息（请勿外传）】\n{text}\n联系电话：{phone}\n请在{due}前办好，办完发“完成 {code} 说明”。"
CLAIM_DETAILS_EXTRA = "\n{label}：{values}"
DETAIL_LABELS = {"phone": "电话", "id": "证件号", "address": "门牌"}
NO_PHONE = "未留"
NOT_YOUR_CLAIM = "{code} 号心愿不是您认领的，不能{action}。"
RELEASE_USAGE = "请写明放弃的原因，例如：放弃 {code} 时间冲突"
RELEASE_OK = "已放弃 {code} 号心愿，它回到了认领大厅。"
DONE_USAGE = "请写一句办理情况，例如：完成 {code} 已上门修好水龙头"
DONE_OK = "谢谢您！{code} 号心愿已记为完成，群众会收到通知。\n现在发一张照片，会作为办理凭证存档。"
EVIDENCE_OK = "照片已存档，作为 {code} 号心愿的办理凭证。"
CONTACTED_OK = "已记录您联系了 {code} 号心愿的群众。"
MY_CLAIMS_EMPTY = "您还没有认领过心愿。发“大厅”看看吧。"
MY_CLAIMS_OPEN = "进行中："
MY_CLAIMS_DONE = "已结束："
MY_CLAIMS_LINE = "{code}号 {text}｜{state}"
MY_CLAIMS_DUE = "期限 {due}"
MY_CLAIMS_OVERDUE = "已超期（期限 {due}）"
CLAIM_OUTCOMES = {"fulfilled": "已完成", "released": "已放弃", "lapsed": "已失效", "reassigned": "已转交"}
RECOMMEND = "【为您推荐】{code}号心愿 [{category}] {community}\n{text}\n{waited}。愿意帮忙请发“认领 {code}”。"

# Quotas (a section of 统计)
QUOTA_HEADER = "【{year}年认领任务】"
QUOTA_MEMBERS = "党员认领：{done}/{total}人达到每人{quota}个"
QUOTA_MEMBERS_BELOW = "未达标：{names}"
QUOTA_BRANCH_LINE = "{branch}：完成{n}/{quota}"
QUOTA_NO_MEMBERS = "还没有绑定的党员。"
LIST_SEP = "、"
WISH_NO = "{code}号"
TAG_SEPARATORS = "，、；"  # full-width separators members type between skill tags
EXAMPLE_CLAIM = "认领 12 7"
EXAMPLE_RELEASE = "放弃 12 时间冲突"
EXAMPLE_DONE = "完成 12 已上门修好"
EXAMPLE_CONTACTED = "已联系 12"
# `microwish members import` column headers (Chinese or English) → field
IMPORT_COLUMNS = {
    "姓名": "name", "name": "name", "手机": "phone", "手机号": "phone", "电话": "phone", "phone": "phone",
    "支部": "branch", "党支部": "branch", "branch": "branch", "社区": "community", "community": "community",
    "网格": "grid", "grid": "grid", "特长": "skills", "skills": "skills",
}
IMPORT_HEADER_HINT = "姓名,手机,支部,社区,网格,特长 or name,phone,branch,community,grid,skills"

# ---------------------------------------------------------------------------------------------
# === Outbox, sandbox, menu (issue 5) ===
MENU_WISH_NEW = "许个心愿"
MENU_WISH_MINE = "我的心愿"
MENU_MORE = "更多"
MENU_HALL = "认领大厅"
MENU_CLAIMS_MINE = "我的认领"
MENU_HELP = "帮助"
SANDBOX_BRANCH = "沙盒党支部"
SANDBOX_LABELS = {
    "title": "微心愿 沙盒",
    "intro": "在这里扮演居民、党员和管理员，和机器人对话；右边是机器人主动发出的一切。",
    "resident_a": "居民 张阿姨",
    "resident_b": "居民 李大爷",
    "member_a": "党员 王同志",
    "admin_a": "管理员 社区书记",
    "role_resident": "居民",
    "role_member": "党员",
    "role_admin": "管理员",
    "add_person": "添加一个人",
    "send": "发送",
    "placeholder": "输入消息，例如：许愿 想请人帮忙修一下楼道灯",
    "invite": "生成党员邀请码",
    "invite_made": "邀请码：{code}（党员发送“绑定 {code} 姓名”）",
    "chat": "对话",
    "claim_channel": "党员认领群（企业微信机器人）",
    "admin_group": "管理员群（企业微信机器人）",
    "cs": "客服消息",
    "template": "模板消息",
    "reply": "被动回复",
    "failed": "发送失败",
    "menu": "菜单",
    "menu_wish_new": MENU_WISH_NEW,
    "menu_wish_mine": MENU_WISH_MINE,
    "menu_hall": MENU_HALL,
    "menu_claims_mine": MENU_CLAIMS_MINE,
    "menu_help": MENU_HELP,
}
MENU_PUSHED = "菜单已创建：{buttons}"
MENU_PUSH_FAILED = "菜单创建失败：{error}"

# ---------------------------------------------------------------------------------------------
# === Schedules: return visits, reminders, digests (issue 6) ===
# Return visits (回访) to residents: plain words, many readers are elderly.
RETURN_VISIT_PROMPT = (
    "您好！您的 {code} 号心愿“{title}”在{fulfilled_at}办好了。\n"
    "想问问您：心愿实现了吗？满意吗？\n"
    "请直接回复一个数字打分：5 很满意，4 满意，3 一般，2 不满意，1 很不满意。\n"
    "也可以回复“已解决”“部分解决”或“未解决”。"
)
RETURN_VISIT_REMINDER = (
    "您好，再问一下您的 {code} 号心愿“{title}”办得怎么样？\n"
    "请回复 1 到 5 的数字打分（5 最满意），或回复“已解决”“部分解决”“未解决”。"
)
PHONE_VISIT_ALERT = (
    "【电话回访】{code} 号心愿“{title}”完成于{fulfilled_at}，回访{days}天未收到回复，"
    "请电话或上门回访，并发“回访 {code} 已解决|部分解决|未解决 [1-5]”记录结果。"
)
PHONE_VISIT_NO_WECHAT = (
    "【电话回访】{code} 号心愿“{title}”完成于{fulfilled_at}，群众没有关注公众号，"
    "请电话或上门回访，并发“回访 {code} 已解决|部分解决|未解决 [1-5]”记录结果。"
)
# Claim reminders to members, alerts to admins.
CLAIM_DUE_SOON = "提醒：您认领的 {code} 号心愿“{title}”将在{due}到期，请抓紧办理。办好后发“完成 {code} 说明”。"
CLAIM_OVERDUE = "您认领的 {code} 号心愿“{title}”已超过承诺期限（{due}），请尽快办理；确实办不了请发“放弃 {code} 原因”退回大厅。"
CLAIM_OVERDUE_ADMIN = "【认领超期】{code} 号心愿“{title}”由{name}认领，承诺{due}前完成，现已超期。"
NUDGE_HEADER = "【一周督促】您有{n}个认领中的心愿："
NUDGE_LINE = "{code}号 {title}（{due}前）{overdue}"
NUDGE_OVERDUE = "已超期"
NUDGE_FOOTER = "办好后请发“完成 编号 说明”，发“我的认领”查看详情。"
REPOST_WAITED = "**已等待认领{days}天，请党员同志帮帮忙！**"
REPOST_ADMIN = "【久未认领】{code} 号心愿“{title}”发布{days}天仍无人认领，已再次发到认领群。"
UNNAMED_MEMBER = "党员{id}"
# Digests (汇总) for admins.
DIGEST_NAMES = {"week": "周报", "tenday": "旬报", "month": "月报"}
DIGEST_TITLE = "### 微心愿{name}（{start}—{end}）"
DIGEST_COUNTS = (
    "新提交 {new}｜发布 {published}｜认领 {claimed}\n"
    "完成 {fulfilled}｜销号 {closed}｜暂缓 {deferred}｜转办 {assigned}"
)
DIGEST_RATES_HEADER = "**三率**（本期发布的心愿，统计到期末）"
DIGEST_RATE_LINE = "{name} {pct}（{num}/{den}）"
DIGEST_RATE_NAMES = {"response": "响应率", "resolution": "解决率", "satisfaction": "满意率"}
DIGEST_RATE_DEFINITIONS = (
    "> 响应率＝发布后{sla}小时内被认领数/发布数；解决率＝已完成数/已认领数；"
    "满意率＝4分及以上的评价数/评价数"
)
DIGEST_MEDIANS = "用时中位数：发布到认领 {claim}；认领到完成 {fulfil}"
DIGEST_HOURS = "{n}小时"
DIGEST_DAYS = "{n}天"
DIGEST_NA = "—"
DIGEST_RANK_BRANCHES = "**支部排名**（本期认领不少于{min}件，按完成率）"
DIGEST_RANK_COMMUNITIES = "**社区排名**（本期发布不少于{min}件，按完成率）"
DIGEST_RANK_LINE = "{rank}. {name} {pct}（{num}/{den}）"
DIGEST_RANK_EMPTY = "（暂无达到{min}件的）"
DIGEST_IDLE_MEMBERS = "**今年尚未认领的党员**（{n}人）：{names}"
DIGEST_OVERDUE_HEADER = "**超期认领**（{n}件）"
DIGEST_OVERDUE_LINE = "{code}号 {name} 承诺{due}前 {title}"
DIGEST_PHONE_HEADER = "**电话回访名单**（{n}件）"
DIGEST_PHONE_LINE = "{code}号 完成于{fulfilled_at} {title}"
DIGEST_NONE = "无"
DIGEST_MORE = "……另有{n}条，详见后台 /admin"
DIGEST_CUT = "……完整内容见后台 /admin"
STATS_PHONE_VISITS = "电话回访名单（{n}件）：{codes}"
STATS_CODE_SEP = "、"
DIGEST_NAME_SEP = "、"
DIGEST_CHART_TITLE = "{name} {start}—{end}"
DIGEST_CHART_LABELS = ("新提交", "发布", "认领", "完成", "销号", "暂缓", "转办")

# ---------------------------------------------------------------------------------------------
# === Dashboard, ledger (issue 7) ===
LEDGER_HEADERS = ("编号", "提交时间", "群众", "社区/网格", "类别", "层级", "内容", "状态", "认领党员", "支部",
                  "承诺时限", "完成时间", "回访评价", "销号时间")
LEDGER_SHEET = "微心愿台账"
LEDGER_RATING = "{rating}分"
LEDGER_FILENAME = "微心愿台账"
# Dashboard words, used by the templates in bot/admin_web/templates as {{ L.key }}.
DASH = {
    "title": "微心愿管理后台", "login": "登录", "logout": "退出", "username": "用户名", "password": "密码",
    "login_failed": "用户名或密码不对。", "login_locked": "失败次数太多，账号已暂时锁定，请{minutes}分钟后再试。",
    "overview": "概览", "wishes": "心愿", "members": "党员", "branches": "支部排名", "outbox": "发送失败",
    "export": "导出台账", "export_csv": "导出 CSV", "export_xlsx": "导出 Excel",
    "rates_period": "近一个月（{start} 至 {end}）发布的心愿",
    "rate_response": "响应率", "rate_resolution": "解决率", "rate_satisfaction": "满意率",
    "rate_response_hint": "{hours}小时内认领 / 发布", "rate_resolution_hint": "已完成 / 已认领",
    "rate_satisfaction_hint": "4分及以上 / 评价", "by_state": "各状态数量", "trend": "每周趋势（近12周）",
    "trend_submitted": "提交", "trend_fulfilled": "完成", "week_of": "周",
    "filter": "筛选", "all": "全部", "state": "状态", "category": "类别", "tier": "层级", "community": "社区",
    "branch": "支部", "overdue": "已超期", "phone_visit": "待电话回访", "next_page": "下一页", "first_page": "第一页",
    "code": "编号", "submitted_at": "提交时间", "resident": "群众", "content": "内容", "claimer": "认领党员",
    "due": "承诺时限", "none": "没有符合条件的心愿。", "timeline": "办理过程", "evidence": "照片",
    "phone": "电话", "place": "社区/网格", "assigned_unit": "承办单位", "rating": "评价",
    "actions": "操作", "approve": "登记发布", "reject": "驳回", "defer": "暂缓", "assign": "转办", "close": "销号",
    "reason": "原因/说明", "unit": "承办单位", "minor": "涉及未成年人", "done": "已办理。",
    "member_name": "姓名", "quota": "本年度完成 / 目标", "finished_this_year": "本年度完成",
    "branch_quota": "目标", "rank": "名次", "open_claims": "进行中", "no_rows": "暂无数据。",
    "recipient": "接收人", "kind": "类型", "attempts": "尝试次数", "last_error": "最后错误", "created": "创建时间",
    "retry": "重新发送", "retried": "已重新排队发送。", "scope_all": "全部社区", "back": "返回",
    "ledger_hint": "台账含全部心愿（按权限范围），群众信息已隐去。",
    "unit_optional": "承办单位（共性/老大难可填）",
    "need_text": "请填写原因、说明或承办单位。",
    "detail_phone": "电话", "detail_id": "证件号", "detail_address": "门牌",
}

# ---------------------------------------------------------------------------------------------
# === Promises, safety, proxies, flags (issue 9) ===

# --- Issue 9, part one: promises (two clocks, lapses), safe visits, minors, group claims ---
DASH["lapses"] = "失效次数"
CLAIM_CONTACT_TAIL = "\n请在{contact_due}前联系群众，联系后发“已联系 {code}”；到时没联系，认领会自动失效。"
CLAIM_SAFETY_TAIL = "\n上门安全码：{safety_code}。上门时请先说出这个码，群众核对无误才会开门。"
NOTICE_SAFETY_TAIL = "\n上门安全码：{safety_code}。党员上门时会先说出这个码，对不上请不要开门，并打电话告诉社区。"
NOTICE_LAPSED = "您的 {code} 号心愿，认领的党员没有按约定时间联系您，这次认领已取消。心愿已重新发布，我们会尽快请其他党员来办。"
NOTICE_LAPSED_MEMBER = "您认领的 {code} 号心愿“{title}”到{contact_due}仍没有联系群众，认领已失效，心愿回到了大厅。这次失效会记入您的认领记录。"
LAPSED_ADMIN = "【认领失效】{code} 号心愿“{title}”由{name}认领，到{contact_due}没有联系群众，已重新发布。"
MY_CLAIMS_CONTACT = "，{contact_due}前需联系群众"
MY_CLAIMS_SAFETY = "，上门安全码 {safety_code}"
MY_CLAIMS_LAPSES = "未按时联系而失效：{n}次"
MY_CLAIMS_HELPING = "协助中："
MY_CLAIMS_HELP_LINE = "{code}号 {text}｜协助{lead}，期限 {due}"
STATS_LAPSES = "认领失效（未按时联系群众）：今年{n}次"
STATS_LAPSE_NAMES = "（{names}）"
STATS_LAPSE_NAME = "{name}{n}次"
MINOR_MASKED = "（涉及未成年人，详情认领后单独告知认领党员）"
NOTICE_CONSENT_NEEDED = ("您的 {code} 号心愿涉及未成年孩子，已经登记。发布前需要监护人同意：监护人请回复“监护人同意”，"
                         "也可以到社区当面确认。发布时不会公开孩子的任何信息。")
APPROVE_HELD_MINOR = "{code} 号心愿涉及未成年人，已登记，监护人同意后自动发布。已告诉群众怎样同意，也可以发“监护人同意 {code}”代为记录。"
CONSENT_PUBLISHED = "已记录监护人同意，{code} 号心愿已发布，孩子的信息不会公开。"
CONSENT_RECORDED = "已记录监护人同意。{code} 号心愿登记后就会发布。"
CONSENT_NOTHING = "您没有需要监护人同意的心愿。"
CONSENT_NOT_MINOR = "{code} 号心愿没有标记涉及未成年人，不需要监护人同意。"
CONSENT_ALREADY = "{code} 号心愿已记录过监护人同意。"
CONSENT_ACTION = "记录监护人同意"
NOTICE_CONSENT_BY_ADMIN = "您的 {code} 号心愿已记录监护人同意。"
HELPER_WORDS = ("协助", "with")
CLAIM_HELPERS_UNKNOWN = "没有找到这些已绑定的党员：{names}。请核对姓名，或不带协助人重新认领。"
CLAIM_HELPERS_SELF = "协助人不能写您自己。"
CLAIM_HELPERS_TOO_MANY = "协助人最多{max}位。"
CLAIM_HELPERS_NONE = "请在“协助”后写上协助党员的姓名，例如：认领 {code} 协助 张三 李四"
CLAIM_HELPERS_TAIL = "\n协助：{names}（由您负责按期完成）"
NOTICE_HELPER = "{branch}的{lead}认领了 {code} 号心愿“{title}”，请您协助。由{lead}负责按期完成，期限 {due}。"
CLAIM_OWN_WISH = "{code} 号心愿是您自己提交的，不能自己认领。"
# --- end of issue 9, part one ---

# --- Issue 9, part two: voice wishes, proxy filing (代办/关联), common problems (合并), flags ---
VOICE_PLACEHOLDER = "【语音心愿，待工作人员听取转写】"
VOICE_OK = "您的语音心愿已收到，编号 {code}。\n我们听到的是：“{text}”\n工作人员登记时会再听一遍语音。发“进度 {code}”可随时查看。"
VOICE_OK_PENDING = "您的语音心愿已收到，编号 {code}。\n工作人员会听您的语音，帮您写下来登记。发“进度 {code}”可随时查看。"
TRANSCRIBE_NOT_VOICE = "{code} 号心愿不是语音心愿，不用转写。"
TRANSCRIBE_TOO_LATE = "{code} 号心愿已经登记，不能再改写内容。"
PROXY_ASK_NAME = "替群众登记心愿。请问群众的姓名？（回复“取消”可随时退出）"
PROXY_BAD_NAME = "姓名请写1到20个字。"
PROXY_ASK_PHONE = "群众的手机号？以后群众关注公众号后，凭手机号后四位就能关联这个心愿。没有请回复“跳过”。"
PROXY_ASK_COMMUNITY = "群众住在哪个社区？"
PROXY_BAD_COMMUNITY = "请写社区名称，例如：幸福社区"
PROXY_ASK_CONSENT = "群众是怎样同意由您代办的？请回复：电话、上门 或 书面"
PROXY_ASK_CONTENT = "请写下群众的心愿：需要什么帮助？"
PROXY_LEFT = "好的，已退出代办，没有登记。"
PROXY_OK = "已替{name}登记心愿，编号 {code}（同意方式：{consent}）。"
PROXY_OK_LINK = "\n请告诉群众：关注“微心愿”公众号后发“关联 {code} 手机号后四位”，就能收到办理进展。"
PROXY_OK_NO_PHONE = "\n群众没有留手机号，办理进展请您电话或上门转告。"
CONSENT_WORDS = {"电话": "phone", "上门": "visit", "书面": "written", "phone": "phone", "visit": "visit", "written": "written"}
CONSENT_NAMES = {"phone": "电话", "visit": "上门", "written": "书面"}
LINK_USAGE = "请发“关联 心愿编号 手机号后四位”，例如：关联 12 5678"
LINK_OK = "关联成功！{code} 号心愿的办理进展以后会发给您。发“我的心愿”可以查看。"
LINK_FAILED = "没有找到可以关联的心愿，请核对编号和手机号后四位。"
LINK_LOCKED = "关联失败次数太多，请{hours}小时后再试，或请社区工作人员帮忙。"
COMMON_HEADER = "可能的共性问题（不同群众反映的相似心愿）："
COMMON_LINE = "共性 {codes}（{community}·{category}，{n}位群众）：{text}"
COMMON_HINT = "合并请发：合并 编号,编号 承办单位"
COMMON_CODE_SEP = ","
# Words that say nothing about the problem itself when comparing wishes (requests, fillers).
COMMON_STOP_WORDS = frozenset({"希望", "帮忙", "帮助", "请求", "需要", "想请", "能否", "可以", "我们", "他们", "一下",
                               "问题", "这个", "那个", "没有", "一个", "不能", "有人", "现在", "已经", "社区", "居民"})
MERGE_USAGE = "请写：合并 编号,编号,… 承办单位，例如：合并 12,15,18 区住建局"
MERGE_TOO_FEW = "合并至少需要两个不同的心愿编号。"
MERGE_NOT_OPEN = "{code} 号心愿现在是“{status}”，不能合并。"
MERGE_NOTE = "与{codes}号心愿合并为一个共性问题，交“{unit}”办理"
MERGE_OK = "已将 {codes} 号心愿合并为一个共性问题，交“{unit}”办理，{n}位群众都已收到通知。"
NOTICE_MERGED = "您的 {code} 号心愿和同社区其他群众反映的问题相同，已合并为一个共性问题，交“{unit}”统一办理。办理进展会告诉您。"
FLAG_KINDS = {
    "self_claim": "自己认领自己的心愿（认领党员就是提交人、代办人或留的是同一个电话）",
    "shared_phone": "群众和认领党员电话相同",
    "fast_close": "认领后不到{hours}小时就销号",
    "proxy_visits": "代办人自己回访自己代办的心愿达{n}次",
}
FLAGS_HEADER = "【需要核实的数据】（{n}条）"
FLAG_WISH_LINE = "{kind}：{codes}"
FLAG_PROXY_LINE = "{kind}：{name}（{codes}）"
DIGEST_FLAGS_HEADER = "**需要核实的数据**（{n}条）"
DASH.update({  # dashboard words of issue 9 (templates read them as {{ L.key }})
    "flags": "核实与共性", "flags_title": "需要核实的数据", "no_flags": "没有需要核实的数据。",
    "common_title": "可能的共性问题", "no_common": "暂无相似心愿。", "merge": "合并转办", "unit": "承办单位",
    "voice": "语音", "voice_media": "语音 MediaId", "voice_link": "收听语音", "transcribe": "转写为文字",
    "voice_unavailable": "语音已过期或暂时取不到（微信临时素材只保存3天）。",
    "transcribe_hint": "听完语音后，把群众说的话写在这里",
    "proxy_by": "代办人", "consent": "同意方式", "residents": "位群众", "kind": "类型", "codes": "心愿编号",
    "transcribed": "已转写。", "merged": "已合并转办。",
    **{f"consent_{method}": name for method, name in CONSENT_NAMES.items()},
})

# ---------------------------------------------------------------------------------------------
# === Wall, budgets (issue 10) ===
COST_WORD = "费用"
YUAN = "元"
COST_BAD_AMOUNT = "费用请写数字（单位：元），例如：完成 {code} 买了米和油 费用 86.5"
COST_TAIL_OK = "\n费用 {cost} 元已记入{community}{year}年预算（剩余 {remaining} 元）。"
COST_TAIL_PENDING = "\n费用 {cost} 元超出{community}{year}年剩余预算 {remaining} 元，已报管理员批准；完成情况照常记录。"
CLAIM_COST_HELD = ("{code} 号心愿预估费用 {cost} 元，超出{community}{year}年剩余预算 {remaining} 元，需要管理员批准后才能认领。"
                   "已告诉管理员，批准后会在认领群通知。")
COST_HELD_ADMIN = ("【费用待批准】{code} 号心愿“{title}”预估 {cost} 元，{community}{year}年预算剩余 {remaining} 元，"
                   "{name}想认领。同意请发“批准 {code}”。")
COST_PENDING_ADMIN = ("【费用待批准】{code} 号心愿“{title}”已完成，报费用 {cost} 元，超出{community}{year}年剩余预算 "
                      "{remaining} 元。同意请发“批准 {code}”。")
COST_APPROVED = "已批准 {code} 号心愿的费用 {cost} 元。{community}{year}年：{summary}"
COST_APPROVED_CHANNEL = "{code} 号心愿的费用已批准，可以认领了：**认领 {code}**"
COST_APPROVED_MEMBER = "您报的 {code} 号心愿费用 {cost} 元已批准。"
COST_ALREADY_APPROVED = "{code} 号心愿的费用已经批准过了。"
COST_NONE = "{code} 号心愿没有登记费用，不需要批准。"
COST_ESTIMATE_TOO_LATE = "{code} 号心愿已经认领，不能再改预估费用；完成时请党员报实际费用（完成 {code} 说明 费用 金额）。"
BUDGET_SUMMARY = "预算 {amount}，已花 {spent} 元，已认领待花 {committed} 元，剩余 {remaining} 元"
BUDGET_AMOUNT = "{amount} 元"
BUDGET_PENDING_TAIL = "，另有 {pending} 元待批准"
BUDGET_NONE = "未设"
NO_COMMUNITY = "未填社区"
DIGEST_BUDGET_HEADER = "**预算（{year}年）**"
DIGEST_BUDGET_LINE = "{community}：{summary}"
LEDGER_COST_HEADERS = ("预估费用", "实际费用", "费用批准时间", "费用待批准")
LEDGER_HEADERS = LEDGER_HEADERS + LEDGER_COST_HEADERS  # per-wish costs: the last columns of the ledger
LEDGER_BUDGET_SHEET = "预算"
LEDGER_BUDGET_HEADERS = ("社区", "年度", "预算", "已花", "已认领待花", "剩余", "待批准")
LEDGER_YES = "是"
DASH.update({  # dashboard words of issue 10
    "budgets": "预算", "budget_title": "社区年度预算（{year}年）", "budget_amount": "预算（元）", "year": "年度",
    "spent": "已花", "committed": "已认领待花", "remaining": "剩余", "pending": "待批准", "save": "保存",
    "budget_saved": "预算已保存。", "budget_bad": "请填写社区、年度和金额（元）。", "by_branch": "各支部已花",
    "est_cost": "预估费用（元）", "actual_cost": "实际费用（元）", "cost_approved": "费用已批准",
    "cost_pending": "费用待批准", "set_estimate": "登记预估费用", "approve_cost": "批准费用",
    "budget_chart": "预算使用情况", "wall": "心愿墙",
})
WALL = {
    "title": "微心愿墙", "title_community": "{community} 微心愿墙",
    "intro": "群众点单，党员认领，结果公开。这里展示群众同意公开的心愿，个人信息已隐去。",
    "rates": "近30天发布的心愿（{start} 至 {end}）", "response": "响应率", "resolution": "解决率",
    "satisfaction": "满意率", "response_hint": "{hours}小时内认领 / 发布", "resolution_hint": "已完成 / 已认领",
    "satisfaction_hint": "4分及以上 / 评价", "latest": "最近 {n} 条心愿", "none": "暂时没有可以展示的心愿。",
    "waited_claimed": "等了{span}有人认领", "waiting": "已等待{span}", "just_now": "刚刚", "branch": "认领：{branch}", "fulfilled_on": "{date}完成",
    "all": "全部社区", "communities": "各社区", "updated": "更新于 {time}", "not_found": "没有这个社区。",
    "footer": "想许愿？关注“微心愿”公众号，发“许愿 加上您的心愿”。不想公开请发“不公开 编号”。",
    "status": {"published": "待认领", "claimed": "办理中", "fulfilled": "已完成", "rated": "已完成", "closed": "已办结"},
}

# ---------------------------------------------------------------------------------------------
# Masking
MASK_PHONE = "[电话]"
MASK_ID = "[证件号]"
MASK_ADDRESS = "[门牌]"
