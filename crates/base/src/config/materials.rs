//! `[materials]` and each matter's list of materials (材料清单): what an application carries
//! besides its form, in which formats and sizes, and where the gateway obtains a material
//! itself instead of asking for it (免提交). The design is `docs/materials.md`.
//!
//! ```toml
//! [[matters."market-regulation.food-permit".materials]]
//! code = "business-licence"          # unique within the matter; the key everywhere
//! name = "营业执照"
//! need = "required"                  # required | optional | deferrable (容缺: may come later)
//! formats = ["pdf", "ofd"]           # of pdf, jpeg, png, ofd; default: all four
//! max_mib = 20                       # default 20 (or the cap, when lower), at most materials.max_mib
//! obtain = { licence = "business_licence", holder = "credit_code" }   # or { lookup = "<id>" }
//! ```

use super::{ConfigError, MatterConfig, ServiceConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// `[materials]`: limits and retention of uploaded materials.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MaterialsConfig {
    /// The largest material any matter may take, in MiB (a matter's `max_mib` is at most this).
    #[serde(default = "default_cap_mib")]
    pub max_mib: u32,
    /// A draft and its uploads are removed this many hours after their last change, unless an
    /// application consumed them.
    #[serde(default = "default_draft_ttl_hours")]
    pub draft_ttl_hours: u32,
    /// Uploads are stored in chunks of this many KiB: an upload holds about one chunk in
    /// memory, whatever the file's size.
    #[serde(default = "default_chunk_kib")]
    pub chunk_kib: u32,
    /// 容缺受理 only with the applicant's signed commitment: an application missing a
    /// deferrable material is refused unless it names who commits to provide it
    /// (`X-Commitment-Signed-By`). Off by default: the hall accepts the promise itself.
    #[serde(default)]
    pub commitment_required: bool,
}

impl Default for MaterialsConfig {
    fn default() -> Self {
        MaterialsConfig {
            max_mib: default_cap_mib(),
            draft_ttl_hours: default_draft_ttl_hours(),
            chunk_kib: default_chunk_kib(),
            commitment_required: false,
        }
    }
}

fn default_cap_mib() -> u32 {
    50
}
fn default_draft_ttl_hours() -> u32 {
    24
}
fn default_chunk_kib() -> u32 {
    256
}

/// A matter's `max_mib` when it gives none (or the cap, when the cap is lower).
pub const DEFAULT_MATERIAL_MIB: u32 = 20;

/// The licence kinds the gateway issues (`gateway-cases::licences::KINDS`, which a test there
/// holds equal to this list): what `obtain.licence` may name.
pub const LICENCE_KINDS: [&str; 6] = [
    "business_licence",
    "food_permit",
    "seal_filing",
    "tax_registration",
    "deed_tax_receipt",
    "property_certificate",
];

/// How much a material is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Need {
    /// The application is not complete without it (unless the gateway obtains it).
    Required,
    /// The applicant may add it.
    Optional,
    /// Needed, but may come after the application (容缺受理: the applicant commits to it).
    Deferrable,
}

/// A file format a material may take, decided from the file's content.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MaterialFormat {
    /// PDF: starts `%PDF-`, ends with `%%EOF`.
    Pdf,
    /// JPEG: starts `FF D8 FF`, ends `FF D9`.
    Jpeg,
    /// PNG: its signature, then chunks to `IEND`.
    Png,
    /// OFD (GB/T 33190-2016): a ZIP container whose central directory holds `OFD.xml`.
    Ofd,
}

impl MaterialFormat {
    /// Every format.
    pub const ALL: [MaterialFormat; 4] = [
        MaterialFormat::Pdf,
        MaterialFormat::Jpeg,
        MaterialFormat::Png,
        MaterialFormat::Ofd,
    ];

    /// Its media type, as stored and answered.
    pub fn media_type(self) -> &'static str {
        match self {
            MaterialFormat::Pdf => "application/pdf",
            MaterialFormat::Jpeg => "image/jpeg",
            MaterialFormat::Png => "image/png",
            MaterialFormat::Ofd => "application/ofd",
        }
    }

    /// The format of a stored media type.
    pub fn of_media_type(media_type: &str) -> Option<MaterialFormat> {
        Self::ALL.into_iter().find(|f| f.media_type() == media_type)
    }

    /// Its name in the config (`pdf` …).
    pub fn name(self) -> &'static str {
        match self {
            MaterialFormat::Pdf => "pdf",
            MaterialFormat::Jpeg => "jpeg",
            MaterialFormat::Png => "png",
            MaterialFormat::Ofd => "ofd",
        }
    }
}

/// Where the gateway obtains a material instead of asking for it (免提交).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(try_from = "ObtainFields", untagged)]
pub enum Obtain {
    /// An electronic licence of this kind held by the holder the matter's input names: in the
    /// licence library now, or issued by a step of the same service this one waits for.
    Licence {
        /// Licence kind (`business_licence` …).
        licence: String,
        /// The matter input path naming the holder (`credit_code`, `buyer.id_number`).
        holder: String,
    },
    /// Stands in when the service's lookup of this id found a record (identity verified at
    /// public security stands in for a copy of the identity card).
    Lookup {
        /// The service lookup's id.
        lookup: String,
    },
}

/// `obtain` as written, before it is known to be one of the two shapes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ObtainFields {
    licence: Option<String>,
    holder: Option<String>,
    lookup: Option<String>,
}

impl TryFrom<ObtainFields> for Obtain {
    type Error = String;

    fn try_from(f: ObtainFields) -> Result<Obtain, String> {
        match (f.licence, f.holder, f.lookup) {
            (Some(licence), Some(holder), None) => Ok(Obtain::Licence { licence, holder }),
            (None, None, Some(lookup)) => Ok(Obtain::Lookup { lookup }),
            _ => Err("obtain is { licence = \"<kind>\", holder = \"<input path>\" } or { lookup = \"<service lookup id>\" }".into()),
        }
    }
}

/// One material of a matter.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaterialConfig {
    /// Unique within the matter: lowercase letters, digits, `-` and `_` (it is a URL segment
    /// and a field path, `materials.<code>`). A code used by two matters is one material.
    pub code: String,
    /// Chinese name, e.g. `公司章程`.
    pub name: String,
    /// Required, optional, or deferrable (容缺).
    pub need: Need,
    /// The formats taken; default all four.
    #[serde(default = "all_formats")]
    pub formats: Vec<MaterialFormat>,
    /// The largest file taken, in MiB; default [`DEFAULT_MATERIAL_MIB`] (or the cap, if lower).
    pub max_mib: Option<u32>,
    /// Where the gateway obtains it instead (免提交); absent: the applicant provides it.
    pub obtain: Option<Obtain>,
    /// A deferrable material (容缺): the working days after receipt within which the
    /// applicant commits to provide it; default [`DEFAULT_COMMITMENT_DAYS`].
    pub commitment_days: Option<u32>,
}

/// Working days a 容缺 commitment runs when the material names none.
pub const DEFAULT_COMMITMENT_DAYS: u32 = 10;

fn all_formats() -> Vec<MaterialFormat> {
    MaterialFormat::ALL.to_vec()
}

impl MaterialConfig {
    /// The largest file taken, in bytes, under the global cap `cap_mib`.
    pub fn max_bytes(&self, cap_mib: u32) -> u64 {
        u64::from(self.max_mib(cap_mib)) * 1024 * 1024
    }

    /// The largest file taken, in MiB, under the global cap.
    pub fn max_mib(&self, cap_mib: u32) -> u32 {
        self.max_mib.unwrap_or(DEFAULT_MATERIAL_MIB.min(cap_mib))
    }
}

fn is_code(code: &str) -> bool {
    (1..=64).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && code.as_bytes()[0].is_ascii_alphanumeric()
}

impl MaterialsConfig {
    /// The section's own bounds.
    pub(super) fn check(&self, file: &Path) -> Result<(), ConfigError> {
        if self.max_mib == 0 || self.max_mib > 4096 {
            return Err(ConfigError::new(
                file,
                "materials.max_mib",
                "must be 1 to 4096 (MiB)",
            ));
        }
        if self.draft_ttl_hours == 0 {
            return Err(ConfigError::new(
                file,
                "materials.draft_ttl_hours",
                "must be at least 1 hour",
            ));
        }
        if !(4..=8192).contains(&self.chunk_kib) {
            return Err(ConfigError::new(
                file,
                "materials.chunk_kib",
                "must be 4 to 8192 (KiB)",
            ));
        }
        Ok(())
    }
}

/// Every matter's materials: a known need and format (the parser saw to those), a code used
/// once per matter, a size under the cap, an `obtain` naming a licence kind the gateway
/// issues or a lookup some service of the matter runs.
pub(super) fn check(
    catalogue: &Path,
    cap_mib: u32,
    matters: &BTreeMap<String, MatterConfig>,
    services: &BTreeMap<String, ServiceConfig>,
) -> Result<(), ConfigError> {
    for (matter_code, matter) in matters {
        let mut seen = Vec::new();
        for (i, material) in matter.materials.iter().enumerate() {
            let key = |k: &str| format!("matters.\"{matter_code}\".materials[{i}].{k}");
            if !is_code(&material.code) {
                return Err(ConfigError::new(
                    catalogue,
                    key("code"),
                    "1-64 characters of a-z, 0-9, `-` and `_`, starting with a letter or digit",
                ));
            }
            if seen.contains(&material.code.as_str()) {
                return Err(ConfigError::new(
                    catalogue,
                    key("code"),
                    format!(
                        "material `{}` is listed twice for this matter",
                        material.code
                    ),
                ));
            }
            seen.push(&material.code);
            if material.name.trim().is_empty() {
                return Err(ConfigError::new(
                    catalogue,
                    key("name"),
                    "must not be empty",
                ));
            }
            if material.formats.is_empty() {
                return Err(ConfigError::new(
                    catalogue,
                    key("formats"),
                    "at least one of pdf, jpeg, png, ofd",
                ));
            }
            if let Some(mib) = material.max_mib
                && (mib == 0 || mib > cap_mib)
            {
                return Err(ConfigError::new(
                    catalogue,
                    key("max_mib"),
                    format!("must be 1 to {cap_mib} (materials.max_mib, the gateway's cap)"),
                ));
            }
            match &material.obtain {
                Some(Obtain::Licence { licence, holder }) => {
                    if !LICENCE_KINDS.contains(&licence.as_str()) {
                        return Err(ConfigError::new(
                            catalogue,
                            key("obtain.licence"),
                            format!(
                                "`{licence}` is not a licence kind the gateway issues ({})",
                                LICENCE_KINDS.join(", ")
                            ),
                        ));
                    }
                    if holder.split('.').any(str::is_empty) {
                        return Err(ConfigError::new(
                            catalogue,
                            key("obtain.holder"),
                            "a dotted path of the matter's input, e.g. `credit_code`",
                        ));
                    }
                }
                Some(Obtain::Lookup { lookup }) => {
                    let runs = services.values().any(|s| {
                        s.steps.iter().any(|st| &st.matter == matter_code)
                            && s.lookups.iter().any(|l| &l.id == lookup)
                    });
                    if !runs {
                        return Err(ConfigError::new(
                            catalogue,
                            key("obtain.lookup"),
                            format!(
                                "no service with this matter has a lookup `{lookup}` (an id of its [[lookups]])"
                            ),
                        ));
                    }
                }
                None => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MaterialConfig, String> {
        super::super::parse_toml::<MaterialConfig>(Path::new("c.toml"), text)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn obtain_is_one_of_two_shapes_and_formats_default_to_all() {
        let m = parse("code = \"a\"\nname = \"甲\"\nneed = \"required\"\nobtain = { licence = \"business_licence\", holder = \"credit_code\" }").unwrap();
        assert_eq!(m.formats, MaterialFormat::ALL.to_vec());
        assert_eq!(
            m.obtain,
            Some(Obtain::Licence {
                licence: "business_licence".into(),
                holder: "credit_code".into()
            })
        );
        assert_eq!(m.max_mib(50), 20);
        assert_eq!(m.max_mib(8), 8, "the cap, when lower than the default");
        let m = parse("code = \"a\"\nname = \"甲\"\nneed = \"deferrable\"\nformats = [\"pdf\"]\nobtain = { lookup = \"representative\" }").unwrap();
        assert_eq!(
            m.obtain,
            Some(Obtain::Lookup {
                lookup: "representative".into()
            })
        );
        let both = parse("code = \"a\"\nname = \"甲\"\nneed = \"required\"\nobtain = { licence = \"x\", lookup = \"y\" }").unwrap_err();
        assert!(both.contains("obtain"), "{both}");
        let need = parse("code = \"a\"\nname = \"甲\"\nneed = \"maybe\"").unwrap_err();
        assert!(need.contains("need"), "{need}");
        let format =
            parse("code = \"a\"\nname = \"甲\"\nneed = \"optional\"\nformats = [\"docx\"]")
                .unwrap_err();
        assert!(format.contains("formats"), "{format}");
    }

    #[test]
    fn codes_are_url_and_path_safe() {
        assert!(is_code("articles-of-association"));
        assert!(is_code("id_card2"));
        for bad in ["", "A", "a b", "a.b", "a/b", "-a", "身份证"] {
            assert!(!is_code(bad), "{bad}");
        }
    }
}
