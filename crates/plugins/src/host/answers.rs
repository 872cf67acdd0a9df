//! What an adapter answers, made fit to leave the host: measured (the text it wrote counts
//! against `max_result_bytes`), masked where it can reach a screen, a log or a trace (messages,
//! codes, field paths), scrubbed of the department's secrets, and its claims about its
//! department held against what the host saw of its exchanges.

use super::contract::{
    AdapterError, Description, FieldError, Receipt, StatusReport, SupplementRequest,
};
use super::imports::Exchanges;
use gateway_base::redact::{redact, scrub_secrets};

/// What a call's answer says about how it went (the contract's own error, if it carries
/// one), how much text the adapter wrote, and that text made fit to pass on.
pub(super) trait Outcome {
    fn error(&self) -> Option<&AdapterError>;
    /// Bytes of text in the answer, all of it made by the adapter.
    fn text_len(&self) -> usize;
    /// Mask what can reach a screen, a log or a trace (messages, codes, field paths), scrub
    /// secrets from data, and hold the adapter's claims about its department against what
    /// the host saw of its exchanges.
    fn sanitize(&mut self, exchanges: &Exchanges);
}

/// A successful answer of a call.
pub(super) trait Answer {
    fn text_len(&self) -> usize;
    fn sanitize(&mut self);
}

fn scrub(text: &mut String) {
    if let std::borrow::Cow::Owned(scrubbed) = scrub_secrets(text) {
        *text = scrubbed;
    }
}

fn mask(text: &mut String) {
    *text = redact(text);
}

impl Answer for String {
    fn text_len(&self) -> usize {
        self.len()
    }
    // A lookup's record goes to the portal as it is (that is what it is for), secrets aside.
    fn sanitize(&mut self) {
        scrub(self);
    }
}

impl Answer for Receipt {
    fn text_len(&self) -> usize {
        self.reference.len()
            + self.outputs.len()
            + self.message.as_ref().map_or(0, String::len)
            + self.requested.as_ref().map_or(0, requested_len)
    }
    fn sanitize(&mut self) {
        scrub(&mut self.reference);
        scrub(&mut self.outputs);
        self.message.iter_mut().for_each(mask);
        self.requested.iter_mut().for_each(mask_requested);
    }
}

impl Answer for StatusReport {
    fn text_len(&self) -> usize {
        self.reference.len()
            + self.outputs.len()
            + self.message.as_ref().map_or(0, String::len)
            + self.requested.as_ref().map_or(0, requested_len)
    }
    fn sanitize(&mut self) {
        scrub(&mut self.reference);
        scrub(&mut self.outputs);
        self.message.iter_mut().for_each(mask);
        self.requested.iter_mut().for_each(mask_requested);
    }
}

/// Text of what a department asks the applicant to supplement.
fn requested_len(r: &SupplementRequest) -> usize {
    fields_len(&r.fields)
        + r.materials
            .iter()
            .map(|m| m.code.len() + m.reason.len())
            .sum::<usize>()
        + r.due.as_ref().map_or(0, String::len)
}

/// It reaches the applicant's screen: masked like every message.
fn mask_requested(r: &mut SupplementRequest) {
    mask_fields(&mut r.fields);
    for m in &mut r.materials {
        mask(&mut m.code);
        mask(&mut m.reason);
    }
    r.due.iter_mut().for_each(mask);
}

fn fields_len(fields: &[FieldError]) -> usize {
    fields
        .iter()
        .map(|f| f.field.len() + f.code.len() + f.message.len())
        .sum()
}

fn mask_fields(fields: &mut [FieldError]) {
    for f in fields {
        mask(&mut f.field);
        mask(&mut f.code);
        mask(&mut f.message);
    }
}

fn error_len(error: &AdapterError) -> usize {
    match error {
        AdapterError::InvalidInput(fields) => fields_len(fields),
        AdapterError::Rejected(r) => r.code.len() + r.message.len(),
        AdapterError::Unavailable(m)
        | AdapterError::Timeout(m)
        | AdapterError::Protocol(m)
        | AdapterError::Internal(m) => m.len(),
    }
}

/// Mask the error's text, and turn a claim the host's exchanges do not bear out into the
/// adapter's own fault: a department timeout when none of the call's exchanges timed out (an
/// adapter's own sleep is not its department's slowness), a department unavailable when the
/// call never reached it.
fn sanitize_error(error: &mut AdapterError, exchanges: &Exchanges) {
    match error {
        AdapterError::InvalidInput(fields) => mask_fields(fields),
        AdapterError::Rejected(r) => {
            mask(&mut r.code);
            mask(&mut r.message);
        }
        AdapterError::Unavailable(m)
        | AdapterError::Timeout(m)
        | AdapterError::Protocol(m)
        | AdapterError::Internal(m) => mask(m),
    }
    let unfounded = match error {
        AdapterError::Timeout(m) if exchanges.timed_out == 0 => Some(format!(
            "the adapter reported a department timeout ({m}), but none of the {} department \
             request(s) it made timed out",
            exchanges.sent
        )),
        AdapterError::Unavailable(m) if exchanges.sent == 0 => Some(format!(
            "the adapter reported its department unavailable ({m}) without a request to it"
        )),
        _ => None,
    };
    if let Some(why) = unfounded {
        *error = AdapterError::Internal(why);
    }
}

impl<T: Answer> Outcome for Result<T, AdapterError> {
    fn error(&self) -> Option<&AdapterError> {
        self.as_ref().err()
    }
    fn text_len(&self) -> usize {
        match self {
            Ok(answer) => answer.text_len(),
            Err(e) => error_len(e),
        }
    }
    fn sanitize(&mut self, exchanges: &Exchanges) {
        match self {
            Ok(answer) => answer.sanitize(),
            Err(e) => sanitize_error(e, exchanges),
        }
    }
}

impl Outcome for Description {
    fn error(&self) -> Option<&AdapterError> {
        None
    }
    // Described once, at admission, with no department bound: not an answer to a caller.
    fn text_len(&self) -> usize {
        0
    }
    fn sanitize(&mut self, _: &Exchanges) {}
}

impl Outcome for Vec<FieldError> {
    fn error(&self) -> Option<&AdapterError> {
        None
    }
    fn text_len(&self) -> usize {
        fields_len(self)
    }
    fn sanitize(&mut self, _: &Exchanges) {
        mask_fields(self);
    }
}
