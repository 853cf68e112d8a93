"""The words customers read, per template key and locale. Data only: rendering is in
workflows.wording. Add a locale by adding it to every table here and to models.Locale;
the tests check that every locale has every key.

Chinese text uses Chinese (full-width) punctuation, hence the lint exemption for this file.
"""

from __future__ import annotations

from workflows.states import RefundState

# --- the templates ----------------------------------------------------------------------
# One sentence per template key and locale. {amount} is the refund's amount with currency.

TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "pending_review": "Your refund of {amount} is waiting for review.",
        "pending_review.received": "We have received your request for a refund of {amount}.",
        "pending_review.escalated": (
            "Your refund of {amount} is waiting for review. It has taken longer than it"
            " should and has been escalated."
        ),
        "approved": "Your refund of {amount} is approved.",
        "approved.return_item": (
            "Your refund of {amount} is approved. Please send the item back: the money is paid"
            " once it arrives."
        ),
        "refunding": "Your refund of {amount} is on its way to your original payment method.",
        "refunding.action_required": (
            "Your refund of {amount} needs something from you before it can be paid: {instructions}"
        ),
        "refunding.escalated": (
            "Your refund of {amount} is taking longer than expected at the payment provider;"
            " our team is following it up."
        ),
        "open.stopped": (
            "Your refund of {amount} is with our team, who are checking it; we will tell you"
            " what happens next."
        ),
        "refunding.stopped": (
            "Your refund of {amount} is with our team, who are checking it with the payment"
            " provider; we will tell you what happens next."
        ),
        "refunding.payment_failed": (
            # Not "no money has moved": a provider refund of another amount made at its
            # dashboard under this refund's id stops it too (a trial read it with 30.00 paid).
            "Your refund of {amount} could not be paid yet; our team is looking into it."
        ),
        "refunding.reversed": (
            "Your refund of {amount} was returned to us by the payment provider after it was"
            # Not "will tell you before it is paid again": a retry the provider pays at once
            # is told only once paid (a trial).
            " issued, so it has not reached you. Our team is looking into it."
        ),
        "completed": "Your refund of {amount} has been issued to your original payment method.",
        "completed.paid_elsewhere": (
            "Your refund of {amount} has been paid to you by our team in another way than to"
            " your original payment method. Contact us if it has not reached you."
        ),
        "cancelled.rejected": "Your refund request of {amount} was rejected after review.",
        "cancelled.withdrawn": "Your refund request of {amount} was withdrawn.",
        "cancelled.by_staff": (
            "Your refund request of {amount} was cancelled by our team; no money moved."
        ),
        "cancelled.expired": "Your refund request of {amount} expired without a decision.",
        "cancelled.ineligible": (
            "Your refund request of {amount} is not eligible under the refund policy."
        ),
        "cancelled.return_window_elapsed": (
            "Your refund request of {amount} was closed: the item was not returned in time."
        ),
        "cancelled.exceeds_refundable": (
            "Your refund request of {amount} is more than what is still refundable on this order."
        ),
        "cancelled.payment_failed": (
            # Also after a reversal: paid, taken back, then cancelled (a trial).
            "Your refund of {amount} could not be paid and was cancelled; none of it has"
            " reached you."
        ),
        "cancelled.closed_in_temporal": (
            "Your refund request of {amount} was closed by our team before it was paid;"
            " no money moved."
        ),
    },
    "zh-CN": {
        "pending_review": "您的 {amount} 退款正在等待审核。",
        "pending_review.received": "我们已收到您 {amount} 的退款申请。",
        "pending_review.escalated": "您的 {amount} 退款正在等待审核。处理时间已超出预期，已升级处理。",
        "approved": "您的 {amount} 退款已获批准。",
        "approved.return_item": "您的 {amount} 退款已获批准。请寄回商品：收到商品后即退款。",
        "refunding": "您的 {amount} 退款正在退回您的原支付方式。",
        "refunding.action_required": "您的 {amount} 退款需要您先完成一步才能支付：{instructions}",
        "refunding.escalated": "您的 {amount} 退款在支付机构处理时间超出预期，我们的团队正在跟进。",
        "open.stopped": "您的 {amount} 退款正由我们的团队核查，我们会告知您后续处理结果。",
        "refunding.stopped": "您的 {amount} 退款正由我们的团队与支付机构核查，我们会告知您后续处理结果。",
        "refunding.payment_failed": "您的 {amount} 退款暂时未能支付，我们的团队正在处理。",
        "refunding.reversed": "您的 {amount} 退款在发出后被支付机构退回，尚未到账。我们的团队正在处理。",
        "completed": "您的 {amount} 退款已退至您的原支付方式。",
        "completed.paid_elsewhere": "您的 {amount} 退款已由我们的团队通过原支付方式以外的途径支付给您。如未收到，请联系我们。",
        "cancelled.rejected": "您的 {amount} 退款申请经审核未获批准。",
        "cancelled.withdrawn": "您的 {amount} 退款申请已撤回。",
        "cancelled.by_staff": "您的 {amount} 退款申请已由我们的团队取消；款项未发生变动。",
        "cancelled.expired": "您的 {amount} 退款申请因未在期限内作出决定而失效。",
        "cancelled.ineligible": "根据退款政策，您的 {amount} 退款申请不符合条件。",
        "cancelled.return_window_elapsed": "您的 {amount} 退款申请已关闭：商品未在规定时间内寄回。",
        "cancelled.exceeds_refundable": "您的 {amount} 退款申请超出了该订单仍可退款的金额。",
        "cancelled.payment_failed": "您的 {amount} 退款未能支付，已取消；款项未到账。",
        "cancelled.closed_in_temporal": "您的 {amount} 退款申请在支付前已由我们的团队关闭；款项未发生变动。",
    },
}

# Added to the sentence of an approved, paying or paid refund a reviewer approved for less.
ITEM_HELD: dict[str, str] = {
    "en": " We have your returned item: our team will contact you about sending it back.",
    "zh-CN": "我们已收到您退回的商品，我们的团队会就寄回事宜与您联系。",
}

PARTIAL: dict[str, str] = {
    "en": " That is less than the {asked} you asked for: the rest is not refunded.",
    "zh-CN": "该金额低于您申请的 {asked}，其余部分不予退款。",
}

ETA: dict[str, dict[str, str]] = {
    "en": {
        "review": "We aim to decide by {latest}.",
        "review.last": "If no decision is made by {latest}, your request closes then without a"
        " refund; you can ask again.",
        "return": "We need to receive the item by {latest}.",
        "payment": "The money should reach you between {earliest} and {latest}.",
        "payment.same": "The money should reach you by {latest}.",
    },
    "zh-CN": {
        "review": "预计在 {latest} 前作出决定。",
        "review.last": "如果在 {latest} 前仍未作出决定，您的申请将届时关闭且不予退款；您可以重新申请。",
        "return": "我们需要在 {latest} 前收到退回的商品。",
        "payment": "款项预计在 {earliest} 至 {latest} 之间到账。",
        "payment.same": "款项预计在 {latest} 前到账。",
    },
}

REPLY: dict[str, str] = {
    "en": "Hello, thank you for contacting us. {core}{eta} You can follow it any time with"
    " refund number {refund_id}.",
    "zh-CN": "您好，感谢您的联系。{core}{eta}您可以随时通过退款编号 {refund_id} 查询进度。",
}

SUBJECT: dict[str, str] = {
    "en": "Your refund for order {order_id}: {label}",
    "zh-CN": "订单 {order_id} 的退款：{label}",
}

# Subjects of the notices that are not state changes (escalations, payment failures).
SITUATION_LABEL: dict[str, dict[str, str]] = {
    "en": {
        "pending_review.escalated": "taking longer",
        "refunding.payment_failed": "delayed",
        "refunding.reversed": "returned by the payment provider",
        "refunding.action_required": "action needed",
        "refunding.escalated": "taking longer",
        "open.stopped": "with our team",
        "refunding.stopped": "with our team",
        # Not a template: a timeline entry (`wording._CUSTOMER_SITUATIONS`).
        "item_received": "returned item received",
    },
    "zh-CN": {
        "pending_review.escalated": "处理时间延长",
        "refunding.payment_failed": "已延迟",
        "refunding.reversed": "被支付机构退回",
        "refunding.action_required": "需要您操作",
        "refunding.escalated": "处理时间延长",
        "open.stopped": "团队处理中",
        "refunding.stopped": "团队处理中",
        "item_received": "已收到退回的商品",
    },
}

STATE_LABEL: dict[str, dict[RefundState, str]] = {
    "en": {
        RefundState.PENDING_REVIEW: "requested",
        RefundState.APPROVED: "approved",
        RefundState.REFUNDING: "on its way",
        RefundState.COMPLETED: "paid",
        RefundState.CANCELLED: "closed",
    },
    "zh-CN": {
        RefundState.PENDING_REVIEW: "已申请",
        RefundState.APPROVED: "已批准",
        RefundState.REFUNDING: "退款中",
        RefundState.COMPLETED: "已退款",
        RefundState.CANCELLED: "已关闭",
    },
}
