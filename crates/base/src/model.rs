//! The types several crates speak: a problem with a field, the clerk at a window, the state of
//! one step of a case. They are part of the unified API, so each is documented as a schema.

use serde::{Deserialize, Serialize};

mod materials;
pub use materials::{MaterialRef, MaterialSource};

/// One problem with one field of an application: what pre-review reports, all at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldProblem {
    /// Dotted path of the field (`legal_representative.id_number`), empty for the whole form.
    pub field: String,
    /// Stable machine code, one of [`ProblemCode`]; an adapter's own code outside that list is
    /// answered as `invalid` (its message is kept).
    #[serde(serialize_with = "known_code")]
    #[schema(value_type = ProblemCode)]
    pub code: String,
    /// Human-readable reason.
    pub message: String,
    /// The file the problem is in, for problems with a config (a refused reload).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

impl FieldProblem {
    /// A problem.
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        FieldProblem {
            field: field.into(),
            code: code.into(),
            message: message.into(),
            file: None,
        }
    }

    /// The same problem, in a file (a config's).
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }
}

/// The codes a field problem is answered with: a fixed list, so a portal can act on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    /// A required field is missing or blank.
    Required,
    /// The value has the wrong JSON type (text where a number belongs …).
    Type,
    /// The value does not have its format (a date, an identifier's shape, a header's encoding).
    Format,
    /// Too short or too long (characters, or items of a list).
    Length,
    /// An identifier's check character is wrong (GB 11643, GB 32100, GB/T 36904).
    Checksum,
    /// The birth date inside an identity number does not exist or is out of range.
    Date,
    /// A number out of its range.
    Range,
    /// Not one of the allowed values.
    Enum,
    /// The form has no such field.
    UnknownField,
    /// A cross-field rule fails (the seller is not the registered owner …), or a department's
    /// own check.
    Rule,
    /// The department holds no record for what this field names.
    NotFound,
    /// The department refused what this field names.
    Rejected,
    /// Text the department's system cannot encode (GBK).
    Encoding,
    /// Any other problem; the message says which.
    Invalid,
    /// Admin API: a reloaded config's problem, with its `file`.
    Config,
    /// Admin API: an adapter component's signature check failed.
    Signature,
    /// Admin API: an adapter component does not compile.
    Compile,
    /// Admin API: an adapter component does not meet the contract (imports, exports).
    Contract,
    /// Admin API: an adapter component's `describe` failed.
    Describe,
    /// Admin API: an adapter component's contract version is not compatible.
    ContractVersion,
    /// Admin API: an adapter component describes another department.
    Department,
    /// Admin API: an adapter component does not serve what the catalogue needs of it.
    SelfCheck,
    /// Admin API: a number out of its range (a rollout percentage).
    OutOfRange,
    /// A material: the file is empty.
    Empty,
    /// A material: the file ends before its format says it does (a cut-off PDF …).
    Truncated,
    /// A material: larger than its matter takes.
    TooLarge,
}

impl ProblemCode {
    /// Every code.
    pub const ALL: [ProblemCode; 26] = [
        ProblemCode::Required,
        ProblemCode::Type,
        ProblemCode::Format,
        ProblemCode::Length,
        ProblemCode::Checksum,
        ProblemCode::Date,
        ProblemCode::Range,
        ProblemCode::Enum,
        ProblemCode::UnknownField,
        ProblemCode::Rule,
        ProblemCode::NotFound,
        ProblemCode::Rejected,
        ProblemCode::Encoding,
        ProblemCode::Invalid,
        ProblemCode::Config,
        ProblemCode::Signature,
        ProblemCode::Compile,
        ProblemCode::Contract,
        ProblemCode::Describe,
        ProblemCode::ContractVersion,
        ProblemCode::Department,
        ProblemCode::SelfCheck,
        ProblemCode::OutOfRange,
        ProblemCode::Empty,
        ProblemCode::Truncated,
        ProblemCode::TooLarge,
    ];

    /// The code as answered.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemCode::Required => "required",
            ProblemCode::Type => "type",
            ProblemCode::Format => "format",
            ProblemCode::Length => "length",
            ProblemCode::Checksum => "checksum",
            ProblemCode::Date => "date",
            ProblemCode::Range => "range",
            ProblemCode::Enum => "enum",
            ProblemCode::UnknownField => "unknown_field",
            ProblemCode::Rule => "rule",
            ProblemCode::NotFound => "not_found",
            ProblemCode::Rejected => "rejected",
            ProblemCode::Encoding => "encoding",
            ProblemCode::Invalid => "invalid",
            ProblemCode::Config => "config",
            ProblemCode::Signature => "signature",
            ProblemCode::Compile => "compile",
            ProblemCode::Contract => "contract",
            ProblemCode::Describe => "describe",
            ProblemCode::ContractVersion => "contract_version",
            ProblemCode::Department => "department",
            ProblemCode::SelfCheck => "self_check",
            ProblemCode::OutOfRange => "out_of_range",
            ProblemCode::Empty => "empty",
            ProblemCode::Truncated => "truncated",
            ProblemCode::TooLarge => "too_large",
        }
    }

    /// The code of this text; `invalid` for a code outside the list (an adapter's own).
    pub fn of(code: &str) -> ProblemCode {
        ProblemCode::ALL
            .into_iter()
            .find(|c| c.as_str() == code)
            .unwrap_or(ProblemCode::Invalid)
    }
}

fn known_code<S: serde::Serializer>(code: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(ProblemCode::of(code).as_str())
}

/// Who is at fault when something did not happen: what the caller is told, whether it is
/// worth trying again, and whom a circuit breaker or a staged rollout holds responsible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The caller's request (bad input, a department's refusal on the merits, something that
    /// does not exist): the same request fails the same way, so it is not retried.
    Caller,
    /// The department system: unreachable, too slow. Worth trying again later; counts
    /// against the department's circuit breaker.
    Department,
    /// The adapter: it trapped, ran past a limit, or could not read the department's answer.
    /// Worth trying again (a rolled-back version may do better); counts against its version.
    Adapter,
    /// The gateway itself: its store, or no capacity free right now.
    Gateway,
}

impl Fault {
    /// Whether the same request may succeed later.
    pub fn retryable(self) -> bool {
        self != Fault::Caller
    }
}

/// Who acted at the service hall: passed by the portal with every request (全程留痕).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Clerk {
    /// The clerk's operator id.
    pub id: String,
    /// The window (窗口) the clerk sits at.
    pub window: Option<String>,
    /// The service hall (政务服务中心).
    pub hall: Option<String>,
}

/// Where one step of a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Waiting for the steps it depends on.
    Waiting,
    /// Stored, not yet taken by the department.
    Pending,
    /// Taken by the department.
    Accepted,
    /// Being worked on by the department.
    Processing,
    /// Decided in the applicant's favour.
    Approved,
    /// Decided against.
    Rejected,
    /// Returned to the applicant for supplementary fields or materials (补正): the matter is
    /// with the applicant, its clock paused; steps waiting for it keep waiting.
    Returned,
    /// The applicant's supplement is stored and being delivered to the department (clock
    /// running again); the department's receipt gives the next state.
    Supplemented,
    /// Could not be delivered (the department answered unreadably, or the adapter failed).
    Failed,
    /// Not started because a step it depends on did not succeed.
    Blocked,
    /// Withdrawn by the applicant (撤回): final.
    Withdrawn,
}

/// A state or event text no version of the gateway writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a known state or event")]
pub struct UnknownState(pub String);

impl StepState {
    /// Every state, in the order a step may pass through them.
    pub const ALL: [StepState; 11] = [
        StepState::Waiting,
        StepState::Pending,
        StepState::Accepted,
        StepState::Processing,
        StepState::Approved,
        StepState::Rejected,
        StepState::Returned,
        StepState::Supplemented,
        StepState::Failed,
        StepState::Blocked,
        StepState::Withdrawn,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Waiting => "waiting",
            StepState::Pending => "pending",
            StepState::Accepted => "accepted",
            StepState::Processing => "processing",
            StepState::Approved => "approved",
            StepState::Rejected => "rejected",
            StepState::Returned => "returned",
            StepState::Supplemented => "supplemented",
            StepState::Failed => "failed",
            StepState::Blocked => "blocked",
            StepState::Withdrawn => "withdrawn",
        }
    }

    /// True once the department (or the gateway, or the applicant's withdrawal) has decided
    /// and nothing more will happen. `returned` is not final: the applicant may supplement.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            StepState::Approved
                | StepState::Rejected
                | StepState::Failed
                | StepState::Blocked
                | StepState::Withdrawn
        )
    }

    /// True while the matter is with the applicant (补正): its clock is paused.
    pub fn is_paused(self) -> bool {
        self == StepState::Returned
    }

    /// True while the department holds the matter and its status should be polled.
    pub fn is_at_department(self) -> bool {
        matches!(self, StepState::Accepted | StepState::Processing)
    }
}

impl std::str::FromStr for StepState {
    type Err = UnknownState;

    /// The state a stored text names; an unknown text is an error, never a guess.
    fn from_str(text: &str) -> Result<StepState, UnknownState> {
        StepState::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| UnknownState(text.to_string()))
    }
}

impl std::fmt::Display for StepState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened on a case's timeline (全程留痕).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The application was stored: the case exists.
    Received,
    /// A waiting step's prerequisites were approved; it is due for delivery.
    Ready,
    /// A waiting step will not start: a step it waits for did not succeed.
    Blocked,
    /// The department took (or refused) the submission.
    Submitted,
    /// A delivery attempt failed and will be retried.
    DeliveryRetry,
    /// Delivery gave up, or the department found the input invalid.
    DeliveryFailed,
    /// An operator delivered a dead letter again.
    Replayed,
    /// A status read from the department (polling).
    Status,
    /// A status the department called back with.
    Callback,
    /// The step's deadline moved: a reloaded holiday calendar (or time limit) counts its
    /// working days differently; the message says from which last working day to which.
    DeadlineMoved,
    /// The applicant's supplement to a returned step was stored (补正); it is being delivered.
    SupplementReceived,
    /// The department took the supplement; the state is its receipt's.
    SupplementDelivered,
    /// The applicant withdrew the case (撤回): the step is withdrawn at once, or a withdrawal is
    /// being delivered to its department.
    WithdrawalRequested,
    /// The department answered the withdrawal; the state is its receipt's (`withdrawn`, or the
    /// decision it made first).
    WithdrawalDelivered,
    /// A material promised at application (容缺) was uploaded; it is delivered to the steps at
    /// their departments that take it.
    MaterialSupplied,
    /// The applicant evaluated the decided case (好差评); the message names the level and the
    /// channel, never the evaluator or the comment.
    Evaluated,
    /// A 不满意 / 非常不满意 evaluation opened a rectification (整改), with its limit.
    RectificationOpened,
    /// A supervisor closed the case's rectification (after the return visit and the fix).
    RectificationClosed,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 18] = [
        EventKind::Received,
        EventKind::Ready,
        EventKind::Blocked,
        EventKind::Submitted,
        EventKind::DeliveryRetry,
        EventKind::DeliveryFailed,
        EventKind::Replayed,
        EventKind::Status,
        EventKind::Callback,
        EventKind::DeadlineMoved,
        EventKind::SupplementReceived,
        EventKind::SupplementDelivered,
        EventKind::WithdrawalRequested,
        EventKind::WithdrawalDelivered,
        EventKind::MaterialSupplied,
        EventKind::Evaluated,
        EventKind::RectificationOpened,
        EventKind::RectificationClosed,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Received => "received",
            EventKind::Ready => "ready",
            EventKind::Blocked => "blocked",
            EventKind::Submitted => "submitted",
            EventKind::DeliveryRetry => "delivery_retry",
            EventKind::DeliveryFailed => "delivery_failed",
            EventKind::Replayed => "replayed",
            EventKind::Status => "status",
            EventKind::Callback => "callback",
            EventKind::DeadlineMoved => "deadline_moved",
            EventKind::SupplementReceived => "supplement_received",
            EventKind::SupplementDelivered => "supplement_delivered",
            EventKind::WithdrawalRequested => "withdrawal_requested",
            EventKind::WithdrawalDelivered => "withdrawal_delivered",
            EventKind::MaterialSupplied => "material_supplied",
            EventKind::Evaluated => "evaluated",
            EventKind::RectificationOpened => "rectification_opened",
            EventKind::RectificationClosed => "rectification_closed",
        }
    }
}

impl std::str::FromStr for EventKind {
    type Err = UnknownState;

    /// The kind a stored text names; an unknown text is an error.
    fn from_str(text: &str) -> Result<EventKind, UnknownState> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| UnknownState(text.to_string()))
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_codes_are_answered_from_the_fixed_list() {
        for code in ProblemCode::ALL {
            assert_eq!(ProblemCode::of(code.as_str()), code);
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::json!(code.as_str())
            );
        }
        let answered = |code: &str| {
            serde_json::to_value(FieldProblem::new("f", code, "m")).unwrap()["code"].clone()
        };
        assert_eq!(answered("checksum"), "checksum");
        // An adapter's own code is answered as `invalid`, with its message.
        assert_eq!(answered("too_many_owners"), "invalid");
        assert_eq!(answered("unknown_matter"), "invalid");
    }

    #[test]
    fn states_read_back_what_they_write_and_refuse_anything_else() {
        for state in StepState::ALL {
            assert_eq!(state.as_str().parse(), Ok(state));
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::json!(state.as_str())
            );
        }
        assert_eq!(
            "finished".parse::<StepState>(),
            Err(UnknownState("finished".into()))
        );
        assert!("".parse::<StepState>().is_err());
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse(), Ok(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
        assert!("finished".parse::<EventKind>().is_err());
    }
}
