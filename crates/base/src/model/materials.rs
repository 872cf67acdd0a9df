//! A material of an application as the case records it: what each department's adapter is
//! handed (the adapter contract's `material`, made from these by the plugin host), never the
//! bytes themselves. Bytes are read from the store by digest
//! (`gateway_store::Store::read_blob`).

use serde::{Deserialize, Serialize};

/// One material of a case: its code in the catalogue, its name, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MaterialRef {
    /// The material's code (unique within its matter; one material across a service).
    pub code: String,
    /// Its Chinese name, e.g. `公司章程`.
    pub name: String,
    /// A stored file, an electronic licence, or a promise to provide it later.
    pub source: MaterialSource,
}

/// Where a material of a case comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MaterialSource {
    /// A file the applicant uploaded, stored once by its SM3 digest.
    File {
        /// Decided from the content: `application/pdf`, `image/jpeg`, `image/png` or
        /// `application/ofd`.
        media_type: String,
        /// Bytes.
        size: u64,
        /// SM3 of the bytes, 64 lowercase hex digits: the key to read them with.
        sm3: String,
    },
    /// An electronic licence the gateway holds (免提交): it travels as its identifier.
    Licence {
        /// GB/T 36904 identifier.
        id: String,
        /// Licence kind (`business_licence` …).
        kind: String,
        /// The issuing department's own number.
        number: String,
    },
    /// Not provided yet: the applicant committed to provide it (容缺受理).
    Promised {
        /// By when (`YYYY-MM-DD`), once set.
        due: Option<String>,
    },
}
