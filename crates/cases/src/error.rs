//! The one error of the case domain: what did not happen, who is at fault, whether to retry.
//!
//! A failed adapter call becomes a [`CaseError`] here and nowhere else ([`CaseError::from_call`]):
//! its fault comes from the call ([`CallError::fault`]), every text of it is masked (codes and
//! field paths as well as messages: the host has masked them once already, this is the net
//! under it), and a trap says only that it trapped (its backtrace is in the log, with the
//! request's id). The HTTP crate turns a `CaseError` into a status and the one error format;
//! nothing here knows HTTP.

use gateway_base::model::{Fault, FieldProblem};
use gateway_base::redact::redact;
use gateway_plugins::host::CallError;
use gateway_plugins::host::contract::AdapterError;
use gateway_store::StoreError;

/// Why a case operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// The input has problems, every one listed.
    #[error("{} problem(s) with the input", .0.len())]
    InvalidInput(Vec<FieldProblem>),
    /// An `Idempotency-Key` reused for a different request.
    #[error("idempotency key `{0}` was used for a different request")]
    IdempotencyConflict(String),
    /// No such service, lookup, case, licence or department.
    #[error("{what} `{id}` not found")]
    NotFound {
        /// What was looked for: `service`, `case` ….
        what: &'static str,
        /// Its id as given.
        id: String,
    },
    /// The department refused on the merits, or holds no such record (`code` `not_found`).
    #[error("department refused: {code}: {message}")]
    Rejected {
        /// The department.
        department: String,
        /// Its code.
        code: String,
        /// Its reason, masked.
        message: String,
    },
    /// The department could not be reached.
    #[error("department {department} unavailable: {message}")]
    Unavailable {
        /// The department.
        department: String,
        /// Why, masked.
        message: String,
    },
    /// The department did not answer in time.
    #[error("department {department} timed out")]
    Timeout {
        /// The department.
        department: String,
    },
    /// The department answered something its adapter cannot read.
    #[error("department {department} answered unreadably: {message}")]
    Protocol {
        /// The department.
        department: String,
        /// What was wrong, masked.
        message: String,
    },
    /// The adapter failed: a trap, a limit, an internal error, an answer that is not JSON.
    #[error("adapter for {department} failed: {message}")]
    AdapterFailed {
        /// The department.
        department: String,
        /// What failed, masked.
        message: String,
    },
    /// The department's adapter runs all the instances it may at once.
    #[error("the adapter for {department} is busy: its {max} instances are all in use")]
    Busy {
        /// The department.
        department: String,
        /// Its bound on instances.
        max: u32,
    },
    /// The node's memory budget for adapter instances is spent: the call could not start.
    #[error(
        "the adapter for {department} cannot run now: the node's memory budget for adapter \
         instances ({budget_mib} MiB) is spent"
    )]
    MemoryBudget {
        /// The department.
        department: String,
        /// `plugins.memory_budget_mib`.
        budget_mib: u32,
    },
    /// The request conflicts with what is stored (a material provided already).
    #[error("{0}")]
    Conflict(String),
    /// An upload is larger than its material takes.
    #[error("the upload exceeds the limit of {limit_bytes} bytes")]
    TooLarge {
        /// The material's limit.
        limit_bytes: u64,
    },
    /// An upload's body broke off before its end (the client went away, a declared length was
    /// not met).
    #[error("the upload did not arrive whole: {0}")]
    UploadIncomplete(String),
    /// An upload took longer than `server.upload_timeout_ms`, or paused longer than
    /// `server.request_timeout_ms`.
    #[error("the upload {} {ms} ms", if *.stalled { "paused for more than" } else { "took longer than" })]
    UploadTimeout {
        /// The bound it ran past.
        ms: u64,
        /// Whether it paused (else it was too slow as a whole).
        stalled: bool,
    },
    /// A supplement (补正) for a step that is not returned to the applicant (code
    /// `not_returned`).
    #[error("事项「{step}」当前状态为「{state}」，不在补正中，不能提交补正")]
    NotReturned {
        /// The step.
        step: String,
        /// Its state.
        state: gateway_base::model::StepState,
    },
    /// A withdrawal (撤回) of a case whose every matter is decided (code `case_decided`).
    #[error("办件的所有事项均已办结，不能撤回")]
    CaseDecided,
    /// A withdrawal of a case withdrawn already (code `already_withdrawn`).
    #[error("办件已撤回")]
    AlreadyWithdrawn,
    /// A supplement or a withdrawal a department's adapter cannot deliver (contract 0.1):
    /// refused before anything is stored (code `unsupported_by_department`).
    #[error("以下事项的部门接口不支持{what}：{}", .matters.join("、"))]
    LifecycleUnsupported {
        /// `补正` or `撤回`.
        what: &'static str,
        /// The matters concerned.
        matters: Vec<String>,
    },
    /// An evaluation (好差评) of a case not decided yet (code `case_not_decided`).
    #[error("办件尚未办结，办结后方可评价（一事一评）；仍在办理的事项：{}", .open.join("、"))]
    NotDecided {
        /// The matters still open, with their states.
        open: Vec<String>,
    },
    /// A second evaluation of a case on one channel (code `already_evaluated`).
    #[error("该办件已在「{channel}」渠道评价过：一事一评，同一渠道不能再次评价")]
    AlreadyEvaluated {
        /// The channel.
        channel: String,
    },
    /// A rectification's visit, fix or close out of order or repeated (code
    /// `rectification_state`); the message says which.
    #[error("{0}")]
    RectificationState(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CaseError {
    /// The stable code of an evaluation's refusal (409), if this is one.
    pub fn evaluation_code(&self) -> Option<&'static str> {
        match self {
            CaseError::NotDecided { .. } => Some("case_not_decided"),
            CaseError::AlreadyEvaluated { .. } => Some("already_evaluated"),
            CaseError::RectificationState(_) => Some("rectification_state"),
            _ => None,
        }
    }
}

impl CaseError {
    /// The stable code of a lifecycle refusal (409), if this is one.
    pub fn lifecycle_code(&self) -> Option<&'static str> {
        match self {
            CaseError::NotReturned { .. } => Some("not_returned"),
            CaseError::CaseDecided => Some("case_decided"),
            CaseError::AlreadyWithdrawn => Some("already_withdrawn"),
            CaseError::LifecycleUnsupported { .. } => Some("unsupported_by_department"),
            _ => None,
        }
    }
}

impl CaseError {
    /// What a failed call into `department`'s adapter means for the caller.
    pub fn from_call(department: &str, error: CallError) -> CaseError {
        let department = department.to_string();
        match error {
            CallError::Adapter(AdapterError::InvalidInput(fields)) => CaseError::InvalidInput(
                fields
                    .into_iter()
                    .map(|f| {
                        FieldProblem::new(redact(&f.field), redact(&f.code), redact(&f.message))
                    })
                    .collect(),
            ),
            CallError::Adapter(AdapterError::Rejected(r)) => CaseError::Rejected {
                department,
                code: redact(&r.code),
                message: redact(&r.message),
            },
            CallError::Adapter(AdapterError::Unavailable(m)) => CaseError::Unavailable {
                department,
                message: redact(&m),
            },
            CallError::Adapter(AdapterError::Timeout(_)) => CaseError::Timeout { department },
            CallError::Adapter(AdapterError::Protocol(m)) => CaseError::Protocol {
                department,
                message: redact(&m),
            },
            CallError::Adapter(AdapterError::Internal(m)) => CaseError::AdapterFailed {
                department,
                message: redact(&m),
            },
            CallError::Busy(max) => CaseError::Busy { department, max },
            CallError::MemoryBudget(budget_mib) => CaseError::MemoryBudget {
                department,
                budget_mib,
            },
            // What a trap or a failed instantiation said is for the log (the host logged it,
            // masked, with the request's id), not for the caller.
            CallError::Trap(_) => CaseError::AdapterFailed {
                department,
                message: "the adapter trapped; the details are in the gateway's log under this \
                          request's id"
                    .into(),
            },
            CallError::Instantiate(_) => CaseError::AdapterFailed {
                department,
                message: "the adapter could not be started; the details are in the gateway's \
                          log under this request's id"
                    .into(),
            },
            other => CaseError::AdapterFailed {
                department,
                message: redact(&other.to_string()),
            },
        }
    }

    /// Who is at fault.
    pub fn fault(&self) -> Fault {
        match self {
            CaseError::InvalidInput(_)
            | CaseError::IdempotencyConflict(_)
            | CaseError::NotFound { .. }
            | CaseError::Rejected { .. }
            | CaseError::Conflict(_)
            | CaseError::TooLarge { .. }
            | CaseError::UploadIncomplete(_)
            | CaseError::UploadTimeout { .. }
            | CaseError::NotReturned { .. }
            | CaseError::CaseDecided
            | CaseError::AlreadyWithdrawn
            | CaseError::LifecycleUnsupported { .. }
            | CaseError::NotDecided { .. }
            | CaseError::AlreadyEvaluated { .. }
            | CaseError::RectificationState(_) => Fault::Caller,
            CaseError::Unavailable { .. } | CaseError::Timeout { .. } => Fault::Department,
            CaseError::Protocol { .. } | CaseError::AdapterFailed { .. } => Fault::Adapter,
            CaseError::Busy { .. } | CaseError::MemoryBudget { .. } | CaseError::Store(_) => {
                Fault::Gateway
            }
        }
    }

    /// Whether the same request may succeed later.
    pub fn retryable(&self) -> bool {
        self.fault().retryable()
    }

    /// The department the failure concerns, if one does.
    pub fn department(&self) -> Option<&str> {
        match self {
            CaseError::Rejected { department, .. }
            | CaseError::Unavailable { department, .. }
            | CaseError::Timeout { department }
            | CaseError::Protocol { department, .. }
            | CaseError::AdapterFailed { department, .. }
            | CaseError::Busy { department, .. }
            | CaseError::MemoryBudget { department, .. } => Some(department),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_plugins::host::contract::{FieldError, Rejection};

    #[test]
    fn a_failed_call_is_judged_once_and_masked() {
        let id = "11010519491231002X";
        let rejected = CaseError::from_call(
            "tax",
            CallError::Adapter(AdapterError::Rejected(Rejection {
                code: "2002".into(),
                message: format!("纳税人{id}不存在"),
            })),
        );
        assert_eq!(rejected.fault(), Fault::Caller);
        assert!(!rejected.retryable());
        assert!(!rejected.to_string().contains(id), "{rejected}");
        let fields = CaseError::from_call(
            "tax",
            CallError::Adapter(AdapterError::InvalidInput(vec![FieldError {
                field: "taxpayer_id".into(),
                code: "checksum".into(),
                message: format!("{id} 校验位错误"),
            }])),
        );
        assert!(matches!(&fields, CaseError::InvalidInput(p) if !p[0].message.contains(id)));
        let down = CaseError::from_call(
            "tax",
            CallError::Adapter(AdapterError::Unavailable("refused".into())),
        );
        assert_eq!((down.fault(), down.retryable()), (Fault::Department, true));
        let backtrace = "wasm backtrace:\n    0: 0x1a2b - hostile_adapter::lookup::h0123\n";
        let trap = CaseError::from_call("tax", CallError::Trap(backtrace.into()));
        assert_eq!(trap.fault(), Fault::Adapter);
        assert_eq!(trap.department(), Some("tax"));
        assert!(!trap.to_string().contains("backtrace"), "{trap}");
        assert!(!trap.to_string().contains("hostile_adapter"), "{trap}");
        let busy = CaseError::from_call("tax", CallError::Busy(4));
        assert_eq!(busy.fault(), Fault::Gateway);
        let budget = CaseError::from_call("tax", CallError::MemoryBudget(256));
        assert_eq!((budget.fault(), budget.retryable()), (Fault::Gateway, true));
    }

    #[test]
    fn codes_and_field_paths_are_masked_too() {
        let person = "11010519491231002X 13912345678";
        let rejected = CaseError::from_call(
            "tax",
            CallError::Adapter(AdapterError::Rejected(Rejection {
                code: format!("E {person}"),
                message: "refused".into(),
            })),
        );
        assert!(
            matches!(&rejected, CaseError::Rejected { code, .. }
            if code == "E 1101**********002X 139****5678"),
            "{rejected}"
        );
        let fields = CaseError::from_call(
            "tax",
            CallError::Adapter(AdapterError::InvalidInput(vec![FieldError {
                field: format!("applicant.{person}"),
                code: format!("bad-{person}"),
                message: "no".into(),
            }])),
        );
        let CaseError::InvalidInput(problems) = &fields else {
            panic!("{fields}")
        };
        let shown = serde_json::to_string(problems).unwrap();
        assert!(
            !shown.contains("11010519491231002X") && !shown.contains("13912345678"),
            "{shown}"
        );
    }
}

/// What a portal may show of a failed department call: plain Chinese, the same for every
/// adapter, with nothing of the adapter's or the host's own text (`adapter error:
/// AdapterError::Unavailable("…")` is Rust's debug text, and an adapter's message may carry a
/// department's internals). The detail goes to the log beside it. A rejection and field
/// problems are the department's answer on the merits, shown as the adapter words them
/// elsewhere; here they only get a generic line.
pub fn plain_message(error: &CallError) -> &'static str {
    match error {
        CallError::Adapter(AdapterError::Rejected(_)) => "部门不予受理",
        CallError::Adapter(AdapterError::InvalidInput(_)) => "部门认为申请内容有误",
        CallError::Adapter(AdapterError::Unavailable(_)) => "部门系统暂时无法访问",
        CallError::Adapter(AdapterError::Timeout(_)) => "部门系统响应超时",
        CallError::Adapter(AdapterError::Protocol(_)) => "部门系统的答复无法识别",
        CallError::Adapter(AdapterError::Internal(_))
        | CallError::Trap(_)
        | CallError::Instantiate(_)
        | CallError::ResultTooLarge(_) => "部门接口程序出错",
        CallError::CpuLimit(_) | CallError::MemoryLimit(_) | CallError::Timeout(_) => {
            "部门接口程序超出运行限制"
        }
        CallError::Busy(_) | CallError::MemoryBudget(_) => "部门接口繁忙",
        CallError::Unsupported { .. } => "部门接口版本不支持此项操作",
        CallError::Materials(_) => "申请材料暂时无法读取",
    }
}

/// The message recorded when the gateway gives up on a call after `attempts` tries.
pub fn gave_up_message(error: &CallError, attempts: i64) -> String {
    format!("已尝试{attempts}次仍未成功：{}", plain_message(error))
}

#[cfg(test)]
mod plain_tests {
    use super::*;

    #[test]
    fn no_call_error_reads_as_rust() {
        let errors = [
            CallError::Adapter(AdapterError::Unavailable(
                "connection refused (os error 111)".into(),
            )),
            CallError::Adapter(AdapterError::Timeout("x".into())),
            CallError::Adapter(AdapterError::Protocol("expected `}`".into())),
            CallError::Adapter(AdapterError::Internal(
                "setting `app-secret` missing".into(),
            )),
            CallError::Trap("wasm backtrace: 0: <unknown>!core::panicking".into()),
            CallError::CpuLimit(500),
            CallError::Busy(4),
            CallError::Materials("store: disk I/O error".into()),
        ];
        for error in &errors {
            for text in [plain_message(error).to_string(), gave_up_message(error, 5)] {
                assert!(
                    !text.contains("Error") && !text.contains("::") && !text.contains("(\""),
                    "{text}"
                );
                assert!(
                    text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                    "{text}"
                );
            }
        }
        assert_eq!(
            gave_up_message(&errors[0], 5),
            "已尝试5次仍未成功：部门系统暂时无法访问"
        );
    }
}
