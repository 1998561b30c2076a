"""Chinese texts that reach the storefront from the domain apps, marked so `makemessages` puts them in the catalog.

The storefront uses Chinese msgids (the default language) with an English catalog in kameng/web/locale. Status
labels and service error messages are plain Chinese strings in the domain apps, which do not
depend on translation; the templates and `errors.message_for` translate them at display time, and this list is what
makes them translatable (the order timeline is rendered by kameng.orders.events, with its own catalog in
kameng/orders/locale). An error with values in it is listed as its template ("库存不足，仅剩 %(available)s 件"):
`message_for` translates the template, then fills it in.

Updating the catalog (run inside kameng/web without DJANGO_SETTINGS_MODULE, or makemessages writes to LOCALE_PATHS):
    django-admin makemessages -l en --no-obsolete --no-wrap && msgfmt --check -o locale/en/LC_MESSAGES/django.mo \
        locale/en/LC_MESSAGES/django.po
The compiled .mo is committed, so running the site never needs gettext.
"""

from __future__ import annotations

from django.utils.translation import gettext_noop as _

DOMAIN_TEXTS = (
    # order statuses (kameng.orders.models.OrderStatus)
    _("待支付"), _("已支付"), _("审核中"), _("发货中"), _("已发货"), _("已完成"), _("已过期"), _("已取消"),
    _("发货失败"), _("已退款"), _("部分退款"), _("售后中"),
    # payment statuses, why a payment was closed (kameng.payments.models.PaymentCloseReason), ledger journal kinds
    _("已关闭"), _("订单已超时关闭"), _("订单已取消"), _("订单已通过其他方式支付"), _("长时间未收到付款"),
    _("支付失败"),
    _("钱包充值"), _("订单支付"), _("订单收入确认"), _("订单退款"), _("人工调整"),
    # service errors a buyer can meet
    _("已售罄"), _("余额不足"), _("商品不存在或已下架"), _("购买数量必须是整数"), _("订单不存在"),
    _("订单已超时关闭，请重新下单"), _("库存不足，无法发货，未扣款"), _("订单尚未发货，暂无卡密"),
    _("充值记录不存在"), _("支付方式不存在或已停用"), _("请输入有效的金额"), _("金额最多两位小数"),
    _("金额必须大于 0"), _("该用户名不可用，请换一个"), _("该手机号不可用，请换一个"),
    _("手机号格式不正确（11 位中国大陆手机号）"),
    _("用户名需以字母开头，3–30 位字母、数字或下划线"), _("该商品暂不支持在线购买"),
    _("支付单不存在"), _("钱包余额不能用来给钱包充值，请选择其他支付方式"),
    _("该 request_id 已用于另一笔订单（规格或数量不同）"),
    # service errors with values in them (ApplicationError templates + params)
    _("库存不足，仅剩 %(available)s 件"), _("购买数量需在 %(min)s–%(max)s 之间"),
    _("订单金额不能超过 ¥%(amount)s，该规格每单最多 %(max)s 件"),
    _("您有 %(count)s 笔待支付订单，请先支付或取消后再下单"),
    _("request_id 最长 %(max)s 个可见字符"),
    _("订单当前状态为「%(status)s」，无需支付"), _("订单当前状态为「%(status)s」，不能取消"),
    _("订单当前状态为「%(status)s」，没有可下载的卡密"), _("订单状态为「%(from)s」，不能变为「%(to)s」"),
    _("金额不能低于 ¥%(amount)s"), _("金额不能超过 ¥%(amount)s"),
    _("支付方式「%(name)s」配置不完整，暂不可用，请换一种支付方式"),
    # purchases, manual fulfilment and bounds on unpaid orders (kameng.purchases, kameng.orders.fulfilment,
    # kameng.orders.reservations, kameng.catalog.models.DeliveryKind)
    _("该商品（%(kind)s）暂不支持在线购买，请联系客服"), _("直充"), _("人工发货"), _("卡密（自动发货）"),
    _("该规格待支付订单预留的库存已达上限，请使用余额直接购买，或稍后再试"),
    _("您所在的网络已有较多待支付订单，请先支付或取消后再下单"),
    _("已支付，等待人工发货"), _("已发货，请查看发货说明"),
    _("支付时间将到，预留的库存已让给已付款的买家；如仍需购买，付款时将从现有库存重新分配"),
    _("价格规则使该规格的单价不大于 0，暂时无法购买，请联系客服"), _("该商品不需要填写充值信息"),
    # direct top-up forms (kameng.catalog.topup_forms, kameng.catalog.carriers, kameng.orders.checkout)
    _("请填写%(label)s"), _("请选择%(label)s"), _("%(label)s必须是文字"), _("%(label)s含有不可见字符，请重新输入"),
    _("%(label)s的选项无效，请从列表中选择"), _("%(label)s最多 %(max)s 个字符"),
    _("%(label)s格式不正确，请检查后重新输入"), _("%(label)s格式不正确：请输入 11 位中国大陆手机号"),
    _("无法识别该号码所属运营商，该商品仅支持%(wanted)s号码"),
    _("该商品仅支持%(wanted)s号码，您输入的是%(actual)s号码"),
    _("该商品没有充值字段「%(name)s」，可填写：%(names)s"), _("请填写充值信息"), _("充值账号"),
    _("中国移动"), _("中国联通"), _("中国电信"), _("中国广电"), _("手机号"),
    _("该 request_id 已用于另一笔订单（充值信息不同）"),
    # price lines stored on orders (kameng.membership.pricing, kameng.catalog.pricing), shown on the order page
    _("会员价"), _("最低售价保护"),
    # placing an order when the database is slow or busy (kameng.orders.group_commit, kameng.orders.services)
    _("系统繁忙，订单未生成，未扣款，请稍后重试"), _("订单未生成，请重试"),
    _("下单处理超时：订单可能已经生成，请用同一 request_id 重新提交以查询结果，或在「我的订单」中查看"),
    # starting a gateway payment (kameng.payments.services, kameng.purchases.services)
    _("「%(name)s」单笔金额需在 ¥%(min)s–¥%(max)s 之间，请换一种支付方式"),
    _("这笔订单已有一笔「%(channel)s」付款正在确认中；如果您已经付款，请稍候，无需再次支付"),
    # a gateway payment that cannot start (kameng.payments.gateways: the registry, each adapter's build and start);
    # a reason the gateway itself sent goes in as a value, untranslated
    _("支付方式「%(name)s」没有网关适配器"), _("支付宝通道的应用私钥或支付宝公钥无法读取，请检查通道配置"),
    _("易支付商户密钥为空，拒绝签名"), _("易支付 V1 通道缺少商户 ID 或 MD5 密钥，不能使用"),
    _("易支付 V2 通道缺少商户 ID、商户私钥或平台公钥，不能使用"),
    _("微信支付通道配置错误（商户私钥或微信支付公钥无法加载）"),
    _("支付宝网关无法连接"), _("支付宝网关返回 HTTP %(status)s"), _("支付宝应答验签失败"),
    _("支付宝拒绝了请求：%(reason)s"), _("支付宝应答格式错误"), _("支付宝预下单失败：%(reason)s"), _("未知错误"),
    _("易支付 V2 商户私钥无效：%(reason)s"), _("易支付 V2 平台公钥无效：%(reason)s"), _("密钥不是有效的 base64"),
    _("无法读取 RSA 私钥"), _("私钥不是 RSA 密钥"), _("无法读取 RSA 公钥"), _("公钥不是 RSA 密钥"),
    _("支付网关%(action)s失败：网络或应答错误"), _("支付网关%(action)s失败：应答格式错误"),
    _("支付网关%(action)s应答签名校验失败"), _("支付网关下单失败：%(reason)s"), _("支付网关下单应答缺少 pay_info"),
    _("微信支付%(action)s请求失败：网络错误"), _("微信支付%(action)s失败：%(reason)s"),
    _("微信支付下单失败：%(reason)s"), _("下单"),
    _("银联通道的签名证书或根证书配置有误：%(problem)s"),
    _("单号「%(number)s」不是银联可用的商户订单号（8–40 位字母数字，以创建时间开头）"),
    _("单号「%(number)s」中的时间无效"),
    # product search (kameng.catalog.search)
    _("搜索词太长：请输入不超过 %(limit)s 个字"), _("搜索词包含无法识别的字符：请只输入文字、字母和数字"),
    _("搜索词太多：请最多输入 %(limit)s 个词，如「王者 60」"),
    # the payment PIN and password-free payment (kameng.accounts.paypin)
    _("支付密码错误次数过多，已锁定，请在 %(unlocks_at)s 后再试（约 %(minutes)s 分钟）"),
    _("支付密码错误，还可以再试 %(tries_left)s 次"), _("登录密码错误，还可以再试 %(tries_left)s 次"),
    _("支付密码为 6 位数字"), _("请输入 6 位支付密码"),
    _("本次支付 ¥%(amount)s 超过免密支付额度 ¥%(limit)s，请输入 6 位支付密码"),
    _("支付密码过于简单（如 111111、123456、121212），请换一个"), _("请输入原支付密码"), _("请输入登录密码"),
    _("为了您的资金安全，请重新登录后 %(minutes)s 分钟内设置支付密码"), _("请先设置支付密码，再开通免密支付"),
    _("提高免密支付额度需要输入支付密码"), _("用户不存在"), _("金额不能为负数"),
    # password rules (kameng.accounts.validators)
    _("密码不能只有空格。"), _("密码不能包含用户名或手机号。"), _("密码至少需要 %(min_length)d 个字符。"),
    _("密码与用户名、手机号等个人信息太相似。"), _("密码不能与用户名、手机号等个人信息太相似。"),
    _("这个密码太常见，很容易被猜到，请换一个。"), _("密码不能是常见密码。"), _("密码不能全是数字。"),
    # login and registration throttling (kameng.accounts.throttle.LOCK_MESSAGES and LOCK_MESSAGES_IN_SECONDS)
    _("登录失败次数过多，请 %(minutes)s 分钟后再试"), _("登录失败次数过多，请 %(seconds)s 秒后再试"),
    _("该账号近期在多处登录失败，为保护账号安全，请 %(minutes)s 分钟后再试"),
    _("该账号近期在多处登录失败，为保护账号安全，请 %(seconds)s 秒后再试"),
    _("当前网络注册过于频繁，请 %(minutes)s 分钟后再试"), _("当前网络注册过于频繁，请 %(seconds)s 秒后再试"),
    # phone login: SMS codes, their limits and providers, one-tap (kameng.accounts.phone_login, .sms, .onetap)
    _("请输入 6 位数字验证码"), _("验证码错误或已失效，请重新获取"), _("验证码错误次数过多，已失效，请重新获取"),
    _("该账号已停用，如有疑问请联系客服"), _("验证码发送过于频繁，请 %(seconds)s 秒后再试"),
    _("该手机号获取验证码次数过多，请 %(minutes)s 分钟后再试"),
    _("当前网络获取验证码过于频繁，请 %(minutes)s 分钟后再试"),
    _("当前设备获取验证码过于频繁，请 %(minutes)s 分钟后再试"), _("一键登录尝试过于频繁，请 %(minutes)s 分钟后再试"),
    _("短信发送失败，请稍后再试"), _("该手机号无法接收短信，请检查号码"), _("该手机号今日接收短信过多，请稍后再试"),
    _("一键登录暂不可用，请使用短信验证码登录"), _("本站未开通一键登录，请使用短信验证码登录"),
    _("一键登录凭证无效，请重新一键登录或使用短信验证码登录"), _("一键登录凭证已过期，请重新一键登录"),
    _("一键登录凭证已使用过，请重新一键登录"), _("本机号码认证失败，请使用短信验证码登录"),
    # a form body in another charset than UTF-8 (kameng.web.middleware.FormCharsetMiddleware)
    _("表单编码不受支持：请以 UTF-8 编码提交"),
    # the notification e-mail address (kameng.notices.services)
    _("请输入有效的邮箱地址"), _("这已经是您的通知邮箱"), _("今天发送的确认邮件已达上限，请明天再试"),
    _("确认链接无效或已过期，请重新设置邮箱"),
    # points (kameng.points, kameng.catalog.pricing, kameng.orders: redemption, the points shop, journal kinds)
    _("使用积分抵扣时须用余额支付"), _("积分兑换仅支持自动发货的卡密商品"),
    _("积分不足：需要 %(needed)s 积分，当前可用 %(available)s 积分"), _("积分不足，请刷新后重试"),
    _("使用的积分必须是 0–%(max)s 之间的整数"), _("积分商品不存在或已下架"), _("该 request_id 已用于另一笔订单"),
    _("该商品每人限兑 %(limit)s 件，您已兑换 %(taken)s 件"), _("该订单不是积分兑换订单，请按金额退款"),
    _("订单状态为「%(status)s」，不能退款"),
    _("积分发放"), _("积分扣回"), _("积分抵扣"), _("积分退回"), _("积分兑换"), _("积分过期"),
    # real-name verification (kameng.accounts.identity, .services, .verification; RealNameStatus)
    _("身份证号码应为 18 位：前 17 位是数字，最后一位是数字或 X"),
    _("15 位的第一代身份证号码已停止使用，请输入 18 位第二代身份证号码"),
    _("身份证号码校验位不正确，请检查是否输错"), _("身份证号码中的出生日期无效"), _("身份证号码中的地区代码无效"),
    _("姓名应为 2–20 个汉字，少数民族姓名可用「·」分隔"),
    _("姓名与身份证号码不一致，请核对后重试"), _("未查询到该身份证号码的登记信息，请核对后重试"),
    _("身份证号码无效，请核对后重试"), _("姓名格式不被认证服务接受，请按身份证上的姓名填写"),
    _("该身份证号码已被其他账号实名认证"), _("今日实名认证尝试次数已用完，请明天再试"), _("您已完成实名认证"),
    _("实名认证正在进行中，请稍候再试"), _("实名认证服务暂时不可用，请稍后重试"),
    _("未认证"), _("认证中"), _("已认证"), _("未通过"),
    # restock requests in the supplier console (kameng.suppliers.models.RestockStatus, kameng.suppliers.restock)
    _("待处理"), _("已确认"), _("已补货"), _("补货提醒不存在"),
    _("该补货提醒当前为「%(status)s」，不能再这样处理"),
    _("Webhook 地址必须是 https:// 开头的完整网址"), _("无法解析 Webhook 地址的域名，请检查后重试"),
    _("Webhook 地址必须指向公网服务器"),
    # risk control (kameng.risk.engine)
    _("您的操作存在风险，已被系统拦截。如有疑问请联系客服"), _("为保障账号安全，请使用短信验证码完成验证"),
    _("风控服务暂时不可用，请稍后重试"), _("购买游戏类商品前请先完成实名认证"),
    _("根据未成年人保护相关规定，未满 %(age)s 周岁的用户不能购买游戏类商品"),
    _("根据未成年人保护相关规定，未满 %(age)s 周岁的用户购买游戏类商品单笔不能超过 ¥%(limit)s"),
    _("根据未成年人保护相关规定，未满 %(age)s 周岁的用户每月购买游戏类商品累计不能超过 ¥%(limit)s（本月已购 ¥%(spent)s）"),  # noqa: E501 - one msgid
    # after-sales requests (kameng.after_sales): statuses, reasons, the service's refusals
    _("待处理"), _("已同意（已退款）"), _("已拒绝"), _("已撤销"),
    _("卡密无效"), _("卡密已被使用"), _("充值未到账"), _("其他"),
    _("请选择售后原因"), _("补充说明最多 %(max)s 个字"), _("选择「其他」时请填写补充说明"),
    _("该订单已有一个待处理的售后申请，请等待客服处理或先撤销"), _("订单状态为「%(status)s」，不能申请售后"),
    _("已超过售后期限：发货后 %(days)s 天内可申请售后"), _("该订单没有可退金额"), _("售后申请不存在"),
    _("该订单没有待处理的售后申请"), _("售后申请当前状态为「%(status)s」，不能再处理"),
)

# The supplier console's money pages (kameng.web.views.supplier_money): withdrawal statuses, statement line kinds,
# and the withdrawal service's refusals.
SUPPLIER_MONEY_TEXTS = (
    _("待审核"), _("已打款"), _("已驳回"), _("结算"), _("退款冲回"), _("供货商提现申请"), _("供货商提现驳回"),
    _("可提现余额不足"), _("可提现余额不足：当前可提现 ¥%(amount)s"), _("提现金额不能低于 ¥%(amount)s"),
    _("银行账号应为 8–30 位数字"), _("请填写开户银行和户名"), _("开户银行和户名最多 100 个字"),
    _("金额不能超过 ¥%(amount)s"),
)
