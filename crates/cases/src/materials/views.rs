//! What the portal is answered about materials: a service's list, pre-review's findings
//! (免提交, 容缺), drafts and what they hold, a stored material.

use gateway_base::config::{MaterialFormat, Need, Obtain};
use gateway_base::model::FieldProblem;
use gateway_store::materials::NewCaseMaterial;
use serde::Serialize;
use utoipa::ToSchema;

/// One material of a service's form.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FormMaterial {
    /// The material's code: the path segment of its upload and the field of its problems
    /// (`materials.<code>`).
    pub code: String,
    /// Its name, e.g. `公司章程`.
    pub name: String,
    /// `required`, `optional` or `deferrable` (容缺: may come after the application).
    pub need: Need,
    /// The formats taken, decided from the file's content.
    pub formats: Vec<MaterialFormat>,
    /// The largest file taken, in MiB.
    pub max_mib: u32,
    /// The matters that need it.
    pub matters: Vec<String>,
    /// How the gateway can obtain it instead of asking (免提交), if it can: `{"licence",
    /// "holder"}` or `{"lookup"}`. Pre-review says whether it did for this applicant.
    #[schema(required = true)]
    pub obtain: Option<Obtain>,
}

/// How a material was obtained instead of asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ObtainedBy {
    /// An electronic licence the library holds now.
    Licence,
    /// The service's lookup found a record that stands in for it.
    Lookup,
    /// A step of this application issues the licence before the matter that needs it starts.
    Step,
}

/// A material this applicant need not provide, and why (never its content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ObtainedMaterial {
    /// The material's code.
    pub code: String,
    /// How.
    pub by: ObtainedBy,
    /// Which licence, step or lookup, in words.
    pub detail: String,
}

/// The materials part of a pre-review.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct MaterialsReview {
    /// Materials the gateway obtains itself (免提交).
    pub obtained: Vec<ObtainedMaterial>,
    /// Deferrable materials not provided: the application may go ahead, the applicant
    /// committing to provide them (容缺受理). Not problems.
    pub deferrable: Vec<String>,
}

/// The materials outcome of a review: its problems, what the portal is told, and what the
/// case stores if it is accepted.
#[derive(Debug, Clone, Default)]
pub struct MaterialsOutcome {
    /// Problems on `materials.<code>`.
    pub problems: Vec<FieldProblem>,
    /// What the portal is told.
    pub review: MaterialsReview,
    /// The case's materials.
    pub for_case: Vec<NewCaseMaterial>,
}

/// A new draft.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DraftCreated {
    /// Its id: `?draft=` on pre-review and applications.
    pub draft_id: String,
    /// The service it is for.
    pub service: String,
    /// When it is removed unless changed or used before, RFC 3339.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// A material held by a draft.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DraftMaterialView {
    /// The material's code.
    pub code: String,
    /// Its name; null when the service no longer lists it.
    #[schema(required = true)]
    pub name: Option<String>,
    /// Decided from the content.
    pub media_type: String,
    /// Bytes.
    pub size: u64,
    /// SM3 of the bytes, 64 hex digits.
    pub sm3: String,
    /// When, RFC 3339.
    #[schema(format = DateTime)]
    pub uploaded_at: String,
}

/// A draft and what it holds.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Draft)]
pub struct DraftView {
    /// Its id.
    pub draft_id: String,
    /// The service it is for.
    pub service: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Its last change, RFC 3339.
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// When it is removed unless changed or used before, RFC 3339.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// Its materials, by code.
    pub materials: Vec<DraftMaterialView>,
}

/// A stored upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StoredMaterial {
    /// The material's code.
    pub code: String,
    /// Decided from the content: `application/pdf`, `image/jpeg`, `image/png`,
    /// `application/ofd`.
    pub media_type: String,
    /// Bytes.
    pub size: u64,
    /// SM3 of the bytes, 64 hex digits.
    pub sm3: String,
}
