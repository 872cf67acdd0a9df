//! Form bodies in the harness: `application/x-www-form-urlencoded` requests, read in the
//! charset the department expects (GB18030 or GBK for many), checked pair by pair.

use super::{Exchange, Sent};
use crate::encoding::{Charset, EncodingError, form_parse};

impl Sent {
    /// The body read as an `application/x-www-form-urlencoded` form in `charset`, its pairs
    /// in order.
    pub fn form(&self, charset: Charset) -> Result<Vec<(String, String)>, EncodingError> {
        form_parse(&self.body, charset)
    }
}

impl Exchange {
    /// The body is a form in `charset` with these pairs, in this order, and no others; a
    /// mismatch names the first pair that differs.
    pub fn body_form<K: AsRef<str>, V: AsRef<str>>(
        self,
        charset: Charset,
        expected: &[(K, V)],
    ) -> Self {
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
            .collect();
        self.check(move |sent| {
            let pairs = sent
                .form(charset)
                .map_err(|e| format!("body is not a {charset:?} form ({e}): {:?}", sent.text()))?;
            if pairs == expected {
                return Ok(());
            }
            let at = pairs
                .iter()
                .zip(&expected)
                .position(|(a, b)| a != b)
                .unwrap_or(pairs.len().min(expected.len()));
            Err(format!(
                "form pair {at}: sent {:?}, expected {:?} (sent {} pair(s), expected {})",
                pairs.get(at),
                expected.get(at),
                pairs.len(),
                expected.len()
            ))
        })
    }

    /// The body is a form in `charset`, handed to `inspect` as its pairs (which asserts: its
    /// panic fails the test at once). For forms with a signature or a timestamp in them.
    pub fn body_form_with(
        self,
        charset: Charset,
        inspect: impl FnOnce(&[(String, String)]) + 'static,
    ) -> Self {
        self.check(move |sent| match sent.form(charset) {
            Ok(pairs) => {
                inspect(&pairs);
                Ok(())
            }
            Err(e) => Err(format!(
                "body is not a {charset:?} form ({e}): {:?}",
                sent.text()
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Harness;
    use super::*;
    use crate::encoding::form_encode;
    use crate::http::Request;

    fn finish_report(harness: Harness) -> Option<String> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| harness.finish()))
            .err()
            .map(|p| p.downcast_ref::<String>().cloned().unwrap_or_default())
    }

    fn send_form(pairs: &[(&str, &str)]) {
        let body = form_encode(pairs, Charset::Gb18030).unwrap();
        Request::post("/gateway/submit")
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=GB18030",
            )
            .body(body)
            .send()
            .unwrap();
    }

    #[test]
    fn a_gb18030_form_as_expected_passes() {
        let harness = Harness::new().expect(
            Exchange::post("/gateway/submit")
                .body_form(
                    Charset::Gb18030,
                    &[("qymc", "福州𠀀有限公司"), ("lsh", "001")],
                )
                .body_form_with(Charset::Gb18030, |pairs| assert_eq!(pairs[1].1, "001"))
                .respond(200, "ok"),
        );
        send_form(&[("qymc", "福州𠀀有限公司"), ("lsh", "001")]);
        assert_eq!(finish_report(harness), None);
    }

    #[test]
    fn a_form_that_differs_names_the_pair() {
        let harness = Harness::new()
            .expect(
                Exchange::post("/gateway/submit")
                    .body_form(Charset::Gb18030, &[("qymc", "福州"), ("lsh", "001")])
                    .respond(200, "ok"),
            )
            .expect(
                Exchange::post("/gateway/submit")
                    .body_form(Charset::Gb18030, &[("a", "1")])
                    .respond(200, "ok"),
            );
        send_form(&[("qymc", "福州"), ("lsh", "002")]);
        // A byte no GB18030 sequence has (0xFF) is refused, not replaced.
        Request::post("/gateway/submit")
            .body("a=%FF")
            .send()
            .unwrap();
        let report = finish_report(harness).unwrap();
        assert!(
            report.contains(
                r#"form pair 1: sent Some(("lsh", "002")), expected Some(("lsh", "001"))"#
            ),
            "{report}"
        );
        assert!(report.contains("body is not a Gb18030 form"), "{report}");
    }
}
