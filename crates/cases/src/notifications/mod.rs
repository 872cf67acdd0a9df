//! Notifications by SMS: the applicant is told when the case is received and when a matter is
//! returned, approved, rejected or withdrawn; a department's staff are chased (催办) when a step
//! turns yellow and again red, and its supervisor is told of each red card.
//!
//! The channel is a department-like system with an adapter of its own (`[notifications]
//! channel`, e.g. the SMS provider `sms`): a notification is the adapter's `submit` with matter
//! [`SMS_MATTER`], a JSON payload `{phone, sign_name, template, variables, out_id}` and the
//! notification's id as the idempotency key (and the provider's out-id), so a repeat after a
//! crash between sending and recording is not sent twice. The provider's delivery receipts
//! come back as callbacks (`/callbacks/<channel>`) and are recorded on the notification.
//!
//! The outbox row is written in the transaction of its cause (`gateway_store::notifications`):
//! a case event, or a light change ([`chases`]). The sender here claims due rows, sends each,
//! and retries with back-off while the provider fails, up to `max_attempts`.
//!
//! Phone numbers: the applicant's is registered by the portal per case
//! (`PUT /api/v1/cases/{id}/notifications`, sealed in the store); an applicant notice waits
//! up to `contact_wait_ms` for it, then ends `no_contact`. A department's contacts are its
//! `[departments.<id>.contacts]`, read when sent. Only masked numbers are recorded, logged or
//! answered.
//!
//! Quiet hours hold chases only ([`quiet`]); applicant notices answer the applicant's own
//! action or a decision and are sent at once. An applicant who opted out is not sent anything
//! (the notification ends `opted_out`): opted out by the portal for one case, or by replying
//! "TD" / "退订" to a message, which opts the number out of every case it is on ([`opt_out`]).
//!
//! # Layout
//! - this file: the settings, the sender loop, one notification's sending, the views.
//! - [`templates`]: the variables of a notification, filled from its case.
//! - [`quiet`]: when a chase arising at an instant is due.
//! - [`chases`]: the light scanner: each step's turn to yellow and to red recorded once
//!   (a red card), with its chases.
//! - [`opt_out`]: the applicant's 退订 reply by the channel's callback: the number opted out.

pub mod chases;
pub mod opt_out;
pub mod quiet;
pub mod templates;

use crate::{CaseError, Orchestrator};
use gateway_base::config::{Config, Contacts, Notice, NotificationsConfig, TemplateConfig};
use gateway_base::redact::mask_phone;
use gateway_base::time::{now_ms, rfc3339};
use gateway_plugins::host::CallError;
use gateway_plugins::host::contract::{AdapterError, Submission};
use gateway_store::notifications::NotificationRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The matter a channel adapter serves: send one SMS.
pub const SMS_MATTER: &str = "sms.send";

/// What the sender needs from the config.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `[notifications]`; none: nothing is recorded or sent.
    pub config: Option<NotificationsConfig>,
    /// Each department's contacts.
    pub contacts: BTreeMap<String, Contacts>,
    /// Each department's display name (for templates).
    pub department_names: BTreeMap<String, String>,
}

impl Settings {
    /// From a checked config.
    pub fn from_config(config: &Config) -> Settings {
        Settings {
            config: config.notifications.clone(),
            contacts: config
                .departments
                .iter()
                .map(|(id, d)| (id.clone(), d.contacts.clone()))
                .collect(),
            department_names: config
                .departments
                .iter()
                .map(|(id, d)| (id.clone(), d.name.clone()))
                .collect(),
        }
    }

    fn template(&self, notice: Notice) -> Option<&TemplateConfig> {
        self.config.as_ref()?.templates.get(&notice)
    }
}

/// One notification as the API shows it: no number but the masked one.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NotificationView {
    /// Its id (the provider's out-id).
    pub id: String,
    /// `received`, `returned`, `approved`, `rejected`, `withdrawn` (to the applicant);
    /// `yellow`, `red` (催办 to the department's staff), `escalation` (to its supervisor).
    pub kind: String,
    /// `applicant`, `staff` or `supervisor`.
    pub recipient: String,
    /// The step it concerns, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// `pending` (not sent yet; held in quiet hours, or retried), `sent` (taken by the
    /// provider), `delivered`, `undeliverable` (the provider's receipt), `failed` (given up),
    /// `opted_out`, `no_contact` (no number to send to), `skipped` (no template configured).
    pub state: String,
    /// The template code it was sent with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The number it went to, masked (`139****5678`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Attempts so far.
    pub attempts: i64,
    /// When it is (or was) due (RFC 3339).
    pub due_at: String,
    /// When it was recorded (RFC 3339).
    pub created_at: String,
    /// When the provider reported delivery (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
    /// The latest outcome in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl From<NotificationRecord> for NotificationView {
    fn from(r: NotificationRecord) -> Self {
        NotificationView {
            id: r.id,
            kind: r.kind,
            recipient: r.recipient,
            step: r.step,
            state: r.state,
            template: r.template,
            phone: r.phone_masked,
            attempts: r.attempts,
            due_at: rfc3339(r.due_at),
            created_at: rfc3339(r.created_at),
            delivered_at: r.delivered_at.map(rfc3339),
            message: r.message,
        }
    }
}

/// A case's notifications and its applicant's contact.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CaseNotifications {
    /// The case.
    pub case_id: String,
    /// The number notices go to, masked; none registered yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// The applicant asked not to be told.
    pub opt_out: bool,
    /// Who opted out, with `opt_out`: `portal` (this API) or `reply` (the applicant replied
    /// "TD" / "退订" to a message from the number: every case with it is opted out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opted_out_by: Option<String>,
    /// Every notification of the case (the applicant's and the chases about its steps),
    /// oldest first.
    pub notifications: Vec<NotificationView>,
}

/// `PUT /api/v1/cases/{id}/notifications`: the applicant's number and/or opt-out.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactRequest {
    /// The applicant's mainland mobile number (11 digits), where notices go.
    pub phone: Option<String>,
    /// True: send the applicant nothing more; false: send again.
    pub opt_out: Option<bool>,
}

/// How long a sender pass waits for new work at most.
const TICK: Duration = Duration::from_millis(200);

/// How often a notice waiting for the applicant's number looks again.
const CONTACT_RECHECK_MS: i64 = 2_000;

impl Orchestrator {
    /// Use these notification settings from now on.
    pub fn configure_notifications(&self, settings: Settings) {
        self.notifications.store(Arc::new(settings));
    }

    /// The notification settings in force.
    pub fn notification_settings(&self) -> Arc<Settings> {
        self.notifications.load_full()
    }

    /// Switch the store's outbox on (through the channel) or off, as the config says: called
    /// once at start-up, before any event.
    pub async fn switch_notifications(&self) -> Result<(), gateway_store::StoreError> {
        let settings = self.notification_settings();
        let channel = settings.config.as_ref().map(|c| c.channel.as_str());
        self.store.switch_notifications(channel).await?;
        let released = self
            .store
            .release_notification_claims(&self.delivery.node)
            .await?;
        if released > 0 {
            tracing::info!(released, "took back this node's unsent notifications");
        }
        Ok(())
    }

    /// Send due notifications until `stopped` turns true (or the orchestrator stops).
    /// Without `[notifications]` it idles (a reload may configure them).
    pub async fn run_notifier(self: Arc<Self>, mut stopped: tokio::sync::watch::Receiver<bool>) {
        while !self.stopping.load(Ordering::SeqCst) && !*stopped.borrow() {
            let due = if self.notification_settings().config.is_some() {
                self.store.due_notifications(now_ms(), 32).await
            } else {
                Ok(Vec::new())
            };
            match due {
                Ok(due) => {
                    let sends = due.into_iter().map(|n| {
                        let this = self.clone();
                        async move { this.send_notification(n).await }
                    });
                    futures::future::join_all(sends).await;
                }
                Err(e) => tracing::error!(error = %e, "notifier cannot read the store"),
            }
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }

    /// Claim one due notification and send it (or finish it unsent), recording the outcome.
    async fn send_notification(&self, n: NotificationRecord) {
        let until = now_ms() + self.delivery.claim_ms;
        match self
            .store
            .claim_notification(&n.id, &self.delivery.node, until)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::error!(error = %e, "claiming a notification failed");
                return;
            }
        }
        let _running = self.delivery.track();
        if let Err(e) = self.send_claimed(&n).await {
            tracing::error!(notification = %n.id, error = %e, "recording a notification failed");
        }
    }

    async fn send_claimed(&self, n: &NotificationRecord) -> Result<(), gateway_store::StoreError> {
        let settings = self.notification_settings();
        let Some(config) = settings.config.as_ref() else {
            return Ok(());
        };
        let Some(notice) = Notice::parse(&n.kind) else {
            return self
                .store
                .notification_finished(&n.id, "skipped", "unknown kind", None)
                .await;
        };
        let Some(template) = settings.template(notice) else {
            return self
                .store
                .notification_finished(&n.id, "skipped", "no template configured", None)
                .await;
        };
        let phone = match n.recipient.as_str() {
            "applicant" => match self.store.case_contact(&n.case_id).await? {
                Some(contact) if contact.opt_out => {
                    return self
                        .store
                        .notification_finished(
                            &n.id,
                            "opted_out",
                            "申请人已退订短信通知",
                            contact.phone_masked.as_deref(),
                        )
                        .await;
                }
                Some(contact) if contact.phone.is_some() => contact.phone.unwrap_or_default(),
                _ if now_ms() - n.created_at < config.contact_wait_ms as i64 => {
                    return self
                        .store
                        .notification_postpone(
                            &n.id,
                            Some("等待登记申请人手机号码"),
                            now_ms() + CONTACT_RECHECK_MS,
                        )
                        .await;
                }
                _ => {
                    return self
                        .store
                        .notification_finished(&n.id, "no_contact", "未登记申请人手机号码", None)
                        .await;
                }
            },
            which => {
                let contacts = n.department.as_ref().and_then(|d| settings.contacts.get(d));
                let phone = contacts.and_then(|c| match which {
                    "staff" => c.staff.clone(),
                    _ => c.supervisor.clone(),
                });
                let Some(phone) = phone else {
                    return self
                        .store
                        .notification_finished(
                            &n.id,
                            "no_contact",
                            &format!("部门未配置{which}联系人"),
                            None,
                        )
                        .await;
                };
                phone
            }
        };
        let masked = mask_phone(&phone);
        let variables = match self.notification_variables(n, notice, template).await {
            Ok(Some(v)) => v,
            Ok(None) => {
                return self
                    .store
                    .notification_postpone(&n.id, None, now_ms() + 300)
                    .await;
            }
            Err(e) => {
                tracing::error!(notification = %n.id, error = %e, "filling a notification's template failed");
                return self
                    .store
                    .notification_postpone(&n.id, None, now_ms() + 5_000)
                    .await;
            }
        };
        let Some(adapter) = self.adapters.get(&config.channel) else {
            tracing::error!(channel = %config.channel, "no adapter loaded for the notification channel; waits");
            return self
                .store
                .notification_postpone(&n.id, None, now_ms() + 5_000)
                .await;
        };
        let payload = serde_json::json!({
            "phone": phone,
            "sign_name": config.signature,
            "template": template.code,
            "variables": variables,
            "out_id": n.id,
        });
        let submission = Submission {
            case_id: n.case_id.clone(),
            matter: SMS_MATTER.into(),
            idempotency_key: n.id.clone(),
            payload: payload.to_string(),
            callback_url: format!("{}/callbacks/{}", self.public_url, config.channel),
            materials: Vec::new(),
        };
        let outcome = adapter.submit(submission).await;
        let channel = config.channel.as_str();
        match outcome {
            Ok(receipt) => {
                self.store
                    .notification_sent(&n.id, &receipt.reference, &masked, &template.code)
                    .await?;
                tracing::info!(notification = %n.id, kind = %n.kind, recipient = %n.recipient, phone = %masked, "notification sent");
                // A delivery receipt may have come before the provider's answer reached us.
                if let Some(held) = self
                    .store
                    .take_callback(channel, &receipt.reference)
                    .await?
                {
                    let delivered = held["state"].as_str() == Some("approved");
                    self.store
                        .notification_receipt(&n.id, delivered, held["message"].as_str())
                        .await?;
                }
                Ok(())
            }
            Err(CallError::Busy(_) | CallError::MemoryBudget(_)) => {
                self.store
                    .notification_postpone(&n.id, None, now_ms() + 500)
                    .await
            }
            Err(CallError::Adapter(AdapterError::Rejected(r))) => {
                let message = gateway_base::redact::redact(&format!("{}: {}", r.code, r.message));
                tracing::warn!(notification = %n.id, error = %message, "the provider refused a notification");
                self.store
                    .notification_finished(&n.id, "failed", &message, Some(&masked))
                    .await
            }
            Err(CallError::Adapter(AdapterError::InvalidInput(fields))) => {
                let message = gateway_base::redact::redact(
                    &fields
                        .iter()
                        .map(|f| format!("{}: {}", f.field, f.message))
                        .collect::<Vec<_>>()
                        .join("; "),
                );
                tracing::warn!(notification = %n.id, error = %message, "a notification cannot be sent");
                self.store
                    .notification_finished(&n.id, "failed", &message, Some(&masked))
                    .await
            }
            Err(error) => {
                // The detail for the log; what `GET …/notifications` shows is plain Chinese.
                let detail = gateway_base::redact::redact(&error.to_string());
                let message = crate::error::plain_message(&error).to_string();
                if n.attempts + 1 >= i64::from(config.max_attempts) {
                    tracing::warn!(notification = %n.id, attempts = n.attempts + 1, error = %detail, "a notification was given up");
                    let message = crate::error::gave_up_message(&error, n.attempts + 1);
                    self.store
                        .notification_finished(&n.id, "failed", &message, Some(&masked))
                        .await
                } else {
                    tracing::warn!(notification = %n.id, attempt = n.attempts + 1, error = %detail, "notification will be retried");
                    self.store
                        .notification_retry(
                            &n.id,
                            &message,
                            now_ms() + crate::pacing::backoff_ms(n.attempts),
                        )
                        .await
                }
            }
        }
    }

    /// A delivery receipt from the channel (its adapter read the callback): recorded on the
    /// notification the provider's id names. False when no notification has that id yet.
    pub(crate) async fn notification_receipt(
        &self,
        reference: &str,
        delivered: bool,
        message: Option<&str>,
    ) -> Result<bool, gateway_store::StoreError> {
        let Some(n) = self.store.notification_by_reference(reference).await? else {
            return Ok(false);
        };
        if self
            .store
            .notification_receipt(&n.id, delivered, message)
            .await?
        {
            tracing::info!(notification = %n.id, delivered, "delivery receipt recorded");
        }
        Ok(true)
    }

    /// A case's notifications and contact, for its owner.
    pub async fn case_notifications(&self, case_id: &str) -> Result<CaseNotifications, CaseError> {
        let contact = self.store.case_contact(case_id).await?.unwrap_or_default();
        let notifications = self
            .store
            .case_notifications(case_id)
            .await?
            .into_iter()
            .map(NotificationView::from)
            .collect();
        Ok(CaseNotifications {
            case_id: case_id.to_string(),
            phone: contact.phone_masked,
            opt_out: contact.opt_out,
            opted_out_by: contact.opted_out_by.filter(|_| contact.opt_out),
            notifications,
        })
    }

    /// Register the applicant's number and/or opt-out for a case (its owner asked).
    pub async fn set_case_contact(
        &self,
        case_id: &str,
        request: &ContactRequest,
    ) -> Result<CaseNotifications, CaseError> {
        let mut problems = Vec::new();
        if let Some(phone) = &request.phone
            && !gateway_base::config::notifications::is_mobile(phone)
        {
            problems.push(gateway_base::model::FieldProblem::new(
                "phone",
                "format",
                "应为11位手机号码（1开头，第二位3-9）",
            ));
        }
        if request.phone.is_none() && request.opt_out.is_none() {
            problems.push(gateway_base::model::FieldProblem::new(
                "",
                "required",
                "请提供 phone 或 opt_out",
            ));
        }
        if !problems.is_empty() {
            return Err(CaseError::InvalidInput(problems));
        }
        self.store
            .set_case_contact(case_id, request.phone.as_deref(), request.opt_out)
            .await?;
        self.case_notifications(case_id).await
    }
}
