//! Chinese for what the case domain names in codes: a case's or a step's status, a light, a
//! timeline event. Pages show these words, never the codes alone (the codes ride along in
//! `data-*` attributes for scripts and tests).

use gateway_base::model::EventKind;
use gateway_cases::deadlines::Light;

/// A status (a case's [`gateway_cases::CaseStatus`] or a step's
/// [`gateway_base::model::StepState`]) as (its code, its Chinese).
pub(crate) fn status_text(status: &impl serde::Serialize) -> (String, &'static str) {
    let code = serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let text = match code.as_str() {
        "received" => "已接收",
        "in_progress" => "办理中",
        "completed" => "已办结",
        "returned" => "待补正",
        "rejected" => "不予办理",
        "failed" => "办理失败",
        "withdrawn" => "已撤回",
        "waiting" => "等待前序事项",
        "pending" => "待送达部门",
        "accepted" => "部门已受理",
        "processing" => "部门办理中",
        "approved" => "已批准",
        "supplemented" => "已补正",
        "blocked" => "前序事项未通过",
        _ => "状态未知",
    };
    (code, text)
}

/// A light as 绿灯 / 黄牌 / 红牌.
pub(crate) fn light_text(light: Light) -> &'static str {
    match light {
        Light::Green => "绿灯",
        Light::Yellow => "黄牌",
        Light::Red => "红牌",
    }
}

/// What happened, in a clerk's words.
pub(crate) fn event_kind_text(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Received => "申请已接收",
        EventKind::Ready => "前序事项已通过，待送达",
        EventKind::Blocked => "前序事项未通过",
        EventKind::Submitted => "已送达部门",
        EventKind::DeliveryRetry => "送达失败，将重试",
        EventKind::DeliveryFailed => "送达失败",
        EventKind::Replayed => "已重新送达",
        EventKind::Status => "部门办理进度",
        EventKind::Callback => "部门回告",
        EventKind::DeadlineMoved => "办理时限调整",
        EventKind::SupplementReceived => "补正材料已接收",
        EventKind::SupplementDelivered => "补正已送达部门",
        EventKind::WithdrawalRequested => "申请撤回",
        EventKind::WithdrawalDelivered => "撤回已送达部门",
        EventKind::MaterialSupplied => "容缺材料已补交",
        EventKind::Evaluated => "已评价",
        EventKind::RectificationOpened => "差评整改开始",
        EventKind::RectificationClosed => "差评整改完成",
    }
}

/// A timeline event as one line: the department, what happened and the state reached, the
/// message (masked).
pub(crate) fn event_text(event: &gateway_cases::views::Event) -> String {
    let what = event_kind_text(event.kind);
    let mut text = match &event.state {
        Some(state) => format!("{what}：{}", status_text(state).1),
        None => what.to_string(),
    };
    if let Some(department) = &event.department {
        text = format!("{department}　{text}");
    }
    if let Some(message) = &event.message {
        text.push('　');
        text.push_str(&gateway_base::redact::redact(message));
    }
    text
}
