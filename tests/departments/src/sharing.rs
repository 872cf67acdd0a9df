//! 免提交 licences verified with the gateway that named them (GB/T 36906 in spirit), the same
//! way by every department: `GET {gateway}/licence-sharing/v1/licences/{id}` with the
//! department's own bearer token (so the gateway's audit log names the department that read).
//! The answer is the licence as issued; the department checks it is the one the application
//! names (kind, number) and, where the application says who holds it, held by that party.
//!
//! Each department reads the identifiers in its own protocol, checks their check character
//! itself (no need to ask about a mistyped one), then asks here, and answers a [`Failure`] in
//! its own error style.

use reqwest::Url;
use serde_json::Value;

use crate::GatewayLink;
use crate::common::ReceivedMaterial;

/// A licence as an application names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claimed {
    /// GB/T 36904 identifier.
    pub id: String,
    pub kind: String,
    pub number: String,
}

/// A licence an application names for one of its materials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamedLicence {
    /// The material's code.
    pub code: String,
    pub claimed: Claimed,
}

/// Why a licence was not verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// It is not what the application says, or the gateway never issued it: why (a refusal on
    /// the merits, in Chinese, for the clerk).
    Refused(String),
    /// The gateway could not be asked: why (worth trying again).
    Unavailable(String),
}

/// One licence of an application that was not verified: its material's code, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotVerified {
    pub code: String,
    pub failure: Failure,
}

/// A department's way to the gateway's licence-sharing endpoint.
#[derive(Clone, Debug)]
pub(crate) struct Verifier {
    /// For logs.
    department: &'static str,
    client: reqwest::Client,
    gateway: GatewayLink,
    /// This department's licence-sharing token.
    token: String,
}

impl Verifier {
    /// `department` verifying at `gateway` with its own `token` (the client gives up after
    /// 5 s: the service is then unavailable).
    pub fn new(
        department: &'static str,
        gateway: &GatewayLink,
        token: &str,
    ) -> anyhow::Result<Self> {
        Ok(Verifier {
            department,
            client: crate::tls::callback_client()?,
            gateway: gateway.clone(),
            token: token.to_owned(),
        })
    }

    /// Ask the gateway about one licence: verified when it is the one claimed and, when
    /// `holders` names any, held by one of them (credit codes or identity numbers).
    pub async fn verify(&self, claimed: &Claimed, holders: &[&str]) -> Result<(), Failure> {
        let Some(url) = self
            .gateway
            .url()
            .and_then(|base| licence_url(&base, &claimed.id))
        else {
            return Err(self.unavailable(claimed, "未配置电子证照共享服务的地址".into()));
        };
        let answer = self.client.get(url).bearer_auth(&self.token).send().await;
        let response = match answer {
            Ok(r) => r,
            Err(e) => {
                return Err(self.unavailable(claimed, format!("电子证照共享服务不可达：{e}")));
            }
        };
        match response.status().as_u16() {
            200 => match response.json::<Value>().await {
                Ok(answer) => judge(&answer, claimed, holders).map_err(Failure::Refused),
                Err(e) => {
                    Err(self.unavailable(claimed, format!("电子证照共享服务答复不可读：{e}")))
                }
            },
            404 => Err(Failure::Refused(format!(
                "电子证照核验未通过：共享服务中无此证照（{}）",
                claimed.id
            ))),
            422 => Err(Failure::Refused(format!(
                "电子证照核验未通过：证照标识校验失败（{}）",
                claimed.id
            ))),
            status => Err(self.unavailable(claimed, format!("电子证照共享服务答复HTTP {status}"))),
        }
    }

    /// Verify each licence an application names, in order, each for the holders
    /// `holders_of` gives it: the materials as verified (`verified_by: "gateway"`), or the
    /// first that is not. `request_id` is the application's.
    pub async fn verify_all<'h>(
        &self,
        request_id: &str,
        named: &[NamedLicence],
        holders_of: impl Fn(&Claimed) -> Vec<&'h str>,
    ) -> Result<Vec<ReceivedMaterial>, NotVerified> {
        let mut verified = Vec::with_capacity(named.len());
        for licence in named {
            let holders = holders_of(&licence.claimed);
            if let Err(failure) = self.verify(&licence.claimed, &holders).await {
                return Err(NotVerified {
                    code: licence.code.clone(),
                    failure,
                });
            }
            verified.push(ReceivedMaterial {
                request_id: request_id.to_owned(),
                code: licence.code.clone(),
                kind: "licence".into(),
                licence_id: Some(licence.claimed.id.clone()),
                verified_by: Some("gateway".into()),
                ..ReceivedMaterial::default()
            });
        }
        Ok(verified)
    }

    fn unavailable(&self, claimed: &Claimed, why: String) -> Failure {
        tracing::warn!(
            department = self.department,
            licence_id = claimed.id,
            why,
            "licence not verified"
        );
        Failure::Unavailable(why)
    }
}

/// The licence-sharing address of licence `id` at the gateway whose base URL is `gateway`.
pub(crate) fn licence_url(gateway: &str, id: &str) -> Option<Url> {
    let mut url = Url::parse(gateway).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    url.set_query(None);
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(["licence-sharing", "v1", "licences", id]);
    Some(url)
}

/// Whether the gateway's answer for a licence is the one claimed, held by one of `holders`
/// when the application names any (identity numbers compared without regard to the case of
/// their `X`).
pub(crate) fn judge(answer: &Value, claimed: &Claimed, holders: &[&str]) -> Result<(), String> {
    let text = |field: &str| {
        answer
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    if text("id") != claimed.id {
        return Err("电子证照共享服务答复的证照标识不符".into());
    }
    if text("kind") != claimed.kind || text("number") != claimed.number {
        return Err(format!(
            "电子证照核验未通过：证照类型或编号与共享服务所存不符（{}）",
            claimed.number
        ));
    }
    let holder = text("holder_id");
    if !holders.is_empty() && !holders.iter().any(|h| h.eq_ignore_ascii_case(holder)) {
        return Err("电子证照核验未通过：证照持有人不是申请人".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_licence_is_asked_for_under_the_gateways_base() {
        let id = "1.2.156.3005.2.X";
        for (base, expected) in [
            (
                "http://127.0.0.1:8080",
                "http://127.0.0.1:8080/licence-sharing/v1/licences/1.2.156.3005.2.X",
            ),
            (
                "https://gw.example/zwfw/",
                "https://gw.example/zwfw/licence-sharing/v1/licences/1.2.156.3005.2.X",
            ),
        ] {
            assert_eq!(licence_url(base, id).unwrap().as_str(), expected);
        }
        assert_eq!(
            licence_url("http://gw", "a/../b").unwrap().path(),
            "/licence-sharing/v1/licences/a%2F..%2Fb"
        );
        assert!(licence_url("ftp://gw", id).is_none());
        assert!(licence_url("not a url", id).is_none());
    }

    #[test]
    fn the_answer_must_be_the_licence_claimed_and_the_applicants() {
        let claimed = Claimed {
            id: "L1".into(),
            kind: "business_licence".into(),
            number: "N1".into(),
        };
        let answer = json!({"id": "L1", "kind": "business_licence", "number": "N1",
            "holder_id": "91350100M000100Y43"});
        assert!(judge(&answer, &claimed, &["91350100M000100Y43"]).is_ok());
        assert!(judge(&answer, &claimed, &[]).is_ok());
        assert!(
            judge(&answer, &claimed, &["91350100MA2XXXXX1X"])
                .unwrap_err()
                .contains("持有人")
        );
        // Either party may hold it where the application names two.
        assert!(
            judge(
                &answer,
                &claimed,
                &["11010519491231002X", "91350100M000100Y43"]
            )
            .is_ok()
        );
        let mut other = answer.clone();
        other["number"] = json!("N2");
        assert!(judge(&other, &claimed, &[]).unwrap_err().contains("编号"));
        other["id"] = json!("L2");
        assert!(judge(&other, &claimed, &[]).is_err());
    }

    #[test]
    fn an_identity_numbers_check_x_is_either_case() {
        let claimed = Claimed {
            id: "L1".into(),
            kind: "deed_tax_receipt".into(),
            number: "N1".into(),
        };
        let answer = json!({"id": "L1", "kind": "deed_tax_receipt", "number": "N1",
            "holder_id": "11010519491231002X"});
        assert!(judge(&answer, &claimed, &["11010519491231002x"]).is_ok());
    }

    #[tokio::test]
    async fn without_the_gateways_address_the_service_is_unavailable() {
        let verifier = Verifier::new(
            "tax",
            &GatewayLink::default(),
            crate::TAX_LICENCE_SHARING_TOKEN,
        )
        .unwrap();
        let claimed = Claimed {
            id: "L1".into(),
            kind: "business_licence".into(),
            number: "N1".into(),
        };
        assert!(matches!(
            verifier.verify(&claimed, &[]).await,
            Err(Failure::Unavailable(why)) if why.contains("地址")
        ));
    }
}
