//! 免提交 licences verified with the gateway that named them (GB/T 36906 in spirit): `GET
//! {gateway}/licence-sharing/v1/licences/{id}` with the department's bearer token, both from
//! its [`GatewayLink`]. The answer is the licence as issued; the department checks it is the
//! one the application names, held by the applicant.

use reqwest::Url;
use serde_json::Value;

use crate::GatewayLink;

/// A licence as an application names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claimed {
    /// GB/T 36904 identifier.
    pub id: String,
    pub kind: String,
    pub number: String,
}

/// What the department concludes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The gateway holds it, as named, for this holder.
    Verified,
    /// It is not what the application says: why (a refusal on the merits).
    Refused(String),
    /// The gateway could not be asked: why (worth trying again).
    Unavailable(String),
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

/// Whether the gateway's answer for a licence is the one claimed, held by `holder` (a credit
/// code) when the application names one.
pub(crate) fn judge(answer: &Value, claimed: &Claimed, holder: Option<&str>) -> Result<(), String> {
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
    if let Some(holder) = holder
        && text("holder_id") != holder
    {
        return Err("电子证照核验未通过：证照持有人不是申请人".into());
    }
    Ok(())
}

/// Ask the gateway about a licence an application names.
pub(crate) async fn verify(
    client: &reqwest::Client,
    gateway: &GatewayLink,
    claimed: &Claimed,
    holder: Option<&str>,
) -> Verdict {
    let Some(url) = gateway
        .url()
        .and_then(|base| licence_url(&base, &claimed.id))
    else {
        return Verdict::Unavailable("未配置电子证照共享服务的地址".into());
    };
    let answer = client.get(url).bearer_auth(&gateway.token).send().await;
    let response = match answer {
        Ok(r) => r,
        Err(e) => return Verdict::Unavailable(format!("电子证照共享服务不可达：{e}")),
    };
    match response.status().as_u16() {
        200 => match response.json::<Value>().await {
            Ok(answer) => match judge(&answer, claimed, holder) {
                Ok(()) => Verdict::Verified,
                Err(why) => Verdict::Refused(why),
            },
            Err(e) => Verdict::Unavailable(format!("电子证照共享服务答复不可读：{e}")),
        },
        404 => Verdict::Refused(format!(
            "电子证照核验未通过：共享服务中无此证照（{}）",
            claimed.id
        )),
        422 => Verdict::Refused(format!(
            "电子证照核验未通过：证照标识校验失败（{}）",
            claimed.id
        )),
        status => Verdict::Unavailable(format!("电子证照共享服务答复HTTP {status}")),
    }
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
        assert!(judge(&answer, &claimed, Some("91350100M000100Y43")).is_ok());
        assert!(judge(&answer, &claimed, None).is_ok());
        assert!(
            judge(&answer, &claimed, Some("91350100MA2XXXXX1X"))
                .unwrap_err()
                .contains("持有人")
        );
        let mut other = answer.clone();
        other["number"] = json!("N2");
        assert!(judge(&other, &claimed, None).unwrap_err().contains("编号"));
        other["id"] = json!("L2");
        assert!(judge(&other, &claimed, None).is_err());
    }
}
