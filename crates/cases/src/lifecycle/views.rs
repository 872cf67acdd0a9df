//! What the lifecycle shows: per matter what a department asks to supplement and the clock,
//! per case the outstanding 容缺 commitments and the withdrawal; the answers of the lifecycle
//! routes.

use gateway_base::model::{FieldProblem, StepState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A supplement (补正) to a returned matter.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SupplementRequest {
    /// The corrected or added fields of the matter's input (only what changes; `null` removes
    /// a field): merged into the input and checked against the matter's schema.
    #[serde(default)]
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// Codes of materials uploaded to the case first (`PUT /api/v1/cases/{id}/materials/{code}`)
    /// to hand the department with the supplement.
    #[serde(default)]
    pub materials: Vec<String>,
}

/// A stored supplement.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SupplementAccepted {
    /// Case id.
    pub case_id: String,
    /// Step id.
    pub step: String,
    /// The step's state now (`supplemented` until the department's receipt).
    pub state: StepState,
}

/// A withdrawal (撤回) of a case.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRequest {
    /// The applicant's reason, 1-500 characters.
    pub reason: String,
}

/// A stored withdrawal.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WithdrawalAccepted {
    /// Case id.
    pub case_id: String,
    /// Steps withdrawn at once (no department held them; never delivered).
    pub withdrawn: Vec<String>,
    /// Steps whose departments are being told (their receipts give the final state:
    /// `withdrawn`, or the decision a department made first).
    pub notifying: Vec<String>,
}

/// A material a department asks for again or anew.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RequestedMaterial {
    /// Material code.
    pub code: String,
    /// The department's reason.
    pub reason: String,
}

/// What a department asks the applicant to supplement (补正).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Requested {
    /// Fields to correct or add, each with the department's reason.
    pub fields: Vec<FieldProblem>,
    /// Materials to provide.
    pub materials: Vec<RequestedMaterial>,
    /// By when (`YYYY-MM-DD`), if the department says.
    #[schema(required = true)]
    pub due: Option<String>,
}

impl Requested {
    /// From the stored (masked) JSON.
    pub fn from_stored(value: &serde_json::Value) -> Requested {
        let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
        let list = |k: &str| value[k].as_array().cloned().unwrap_or_default();
        Requested {
            fields: list("fields")
                .iter()
                .map(|f| FieldProblem::new(text(f, "field"), text(f, "code"), text(f, "message")))
                .collect(),
            materials: list("materials")
                .iter()
                .map(|m| RequestedMaterial {
                    code: text(m, "code"),
                    reason: text(m, "reason"),
                })
                .collect(),
            due: value["due"].as_str().map(str::to_string),
        }
    }
}

/// Whether a matter's clock runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClockState {
    /// Counting against the limit.
    Running,
    /// Stopped while the matter is with the applicant (补正).
    Paused,
    /// The matter is finished.
    Stopped,
}

/// A matter's clock (补正时间不计入承诺时限).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Clock {
    /// Running, paused (returned), or stopped (final).
    pub state: ClockState,
    /// Working days spent returned so far, added to the limit (`supplement_clock = "resume"`).
    pub paused_working_days: i64,
    /// Whether the limit restarted from a supplement (`supplement_clock = "restart"`).
    pub restarted: bool,
    /// Working days left while running (negative once overdue); null otherwise.
    #[schema(required = true)]
    pub remaining_working_days: Option<i64>,
}

/// A 容缺 material the applicant committed to provide.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Commitment {
    /// Material code.
    pub code: String,
    /// Material name.
    pub name: String,
    /// The last working day to provide it (`YYYY-MM-DD`).
    #[schema(required = true)]
    pub due: Option<String>,
    /// Working days left (negative once overdue); null without a due date.
    #[schema(required = true)]
    pub remaining_working_days: Option<i64>,
    /// Past its due date.
    pub overdue: bool,
}

/// A case's withdrawal.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Withdrawn {
    /// When, RFC 3339.
    #[schema(format = DateTime)]
    pub at: String,
}

/// An outstanding commitment on the supervision list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OutstandingCommitment {
    /// Case id.
    pub case_id: String,
    /// Service code.
    pub service: String,
    /// The commitment.
    #[serde(flatten)]
    pub commitment: Commitment,
}

/// The supervision list of outstanding 容缺 commitments, overdue first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Commitments {
    /// Overdue ones.
    pub overdue: usize,
    /// Every outstanding one, overdue first, then by due date.
    pub items: Vec<OutstandingCommitment>,
}
