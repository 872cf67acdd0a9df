//! Application materials (申请材料): what each service asks for besides its form, uploads into
//! a draft or a stored case, and the materials part of pre-review and intake. The design is
//! `docs/materials.md`; the bytes live in the store (`gateway_store::materials`).
//!
//! - **The list.** A service's materials are those of all its matters, each code once (the
//!   strictest need, the formats and size all its matters take), with the matters that need it and
//!   how the gateway can obtain it instead ([`Orchestrator::form_materials`]).
//! - **Upload.** A body streams into the store as it arrives: its type decided from its
//!   content ([`sniff`]), never from a name or a declared type; at most the material's size
//!   (refused as soon as it is passed); within `server.upload_timeout_ms` as a whole, with no
//!   pause longer than `server.request_timeout_ms`. What is refused, cut off or timed out
//!   leaves nothing stored that anyone names.
//! - **Pre-review** reports, with every other problem at once and on `materials.<code>`, a
//!   required material neither provided nor obtainable (`required`), a provided one of a
//!   format or size the matter does not take (`format`, `too_large`); and says what the
//!   gateway obtained instead (免提交: a licence in the library now, a licence a step this one
//!   waits for will issue, a lookup that found a record) and which deferrable materials are
//!   missing (容缺, not a problem).
//! - **Intake** stores the case's materials with the case, in its transaction, and consumes
//!   the draft.
//! - **Retention**: a draft and its uploads go `materials.draft_ttl_hours` after their last
//!   change; files no draft or case refers to go with them ([`Orchestrator::sweep_materials`],
//!   run in the background by [`Orchestrator::run_material_sweeper`]).

mod sniff;
mod views;

pub use views::{
    DraftCreated, DraftMaterialView, DraftView, FormMaterial, MaterialsOutcome, MaterialsReview,
    ObtainedBy, ObtainedMaterial, StoredMaterial,
};

use crate::catalogue::{Catalogue, Service, ServiceStep};
use crate::one_thing::{Sources, get_path};
use crate::{CaseError, Orchestrator, Review};
use gateway_base::config::{Config, MaterialConfig, MaterialFormat, Need, Obtain};
use gateway_base::model::{FieldProblem, MaterialSource};
use gateway_base::time::{now_ms, rfc3339};
use gateway_store::materials::{
    Attach, Attached, BlobWriter, DraftMaterial, NewCaseMaterial, NewMaterialSource,
};
use gateway_store::{Store, StoreError};
use serde_json::Value;
use sniff::{Refusal, Sniffer};
use std::sync::Arc;
use std::time::Duration;

/// How often expired drafts and unreferenced files are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// An upload older than its time limit by this much is surely dead (its node died mid-upload).
const STALE_MARGIN_MS: i64 = 60_000;

/// The limits uploads run under, from `[materials]` and `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaterialSettings {
    /// `materials.max_mib`: the cap every matter's size is under.
    pub cap_mib: u32,
    /// `materials.draft_ttl_hours`, in ms.
    pub draft_ttl_ms: i64,
    /// `materials.chunk_kib`, in bytes.
    pub chunk_bytes: usize,
    /// `server.upload_timeout_ms`: the longest one upload may take.
    pub upload_timeout_ms: u64,
    /// `server.request_timeout_ms`: the longest an upload may pause.
    pub stall_ms: u64,
    /// `materials.commitment_required`: 容缺 only with a signed commitment.
    pub commitment_required: bool,
}

impl MaterialSettings {
    /// From a checked config.
    pub fn from_config(config: &Config) -> MaterialSettings {
        MaterialSettings {
            cap_mib: config.materials.max_mib,
            draft_ttl_ms: i64::from(config.materials.draft_ttl_hours) * 3_600_000,
            chunk_bytes: config.materials.chunk_kib as usize * 1024,
            upload_timeout_ms: config.server.upload_timeout_ms,
            stall_ms: config.server.request_timeout_ms,
            commitment_required: config.materials.commitment_required,
        }
    }
}

impl Default for MaterialSettings {
    fn default() -> Self {
        let defaults = gateway_base::config::MaterialsConfig::default();
        MaterialSettings {
            cap_mib: defaults.max_mib,
            draft_ttl_ms: i64::from(defaults.draft_ttl_hours) * 3_600_000,
            chunk_bytes: defaults.chunk_kib as usize * 1024,
            upload_timeout_ms: 600_000,
            stall_ms: 60_000,
            commitment_required: defaults.commitment_required,
        }
    }
}

/// Who uploads: the portal client, and whether its scopes let it apply for a service.
pub struct Applicant<'a> {
    /// The client's id: a draft's or a case's owner.
    pub client: &'a str,
    /// Whether it may apply for this service (`apply:<service>`).
    pub may_apply: &'a (dyn Fn(&str) -> bool + Send + Sync),
}

impl std::fmt::Debug for Applicant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Applicant")
            .field("client", &self.client)
            .finish()
    }
}

/// What one sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Expired drafts.
    pub drafts: u64,
    /// Uploads whose node died mid-way.
    pub uploads: u64,
    /// Files nothing refers to any more.
    pub blobs: u64,
}

/// One material of a service, once: what every matter listing it accepts, and the steps that
/// list it.
#[derive(Debug)]
pub(crate) struct ServiceMaterial<'c> {
    pub(crate) config: MaterialConfig,
    pub(crate) steps: Vec<&'c ServiceStep>,
}

/// Every material of a service's matters, each code once, in the order the steps list them.
/// One file goes to every department that lists the code, so the service asks for what all of
/// them take: the strictest need (required before deferrable before optional), the formats
/// they all accept, the smallest size limit, and 免提交 only when every matter obtains it the
/// same way. The name is the first matter's.
pub(crate) fn service_materials<'c>(
    catalogue: &'c Catalogue,
    service: &'c Service,
) -> Vec<ServiceMaterial<'c>> {
    let mut out: Vec<ServiceMaterial<'c>> = Vec::new();
    for step in &service.steps {
        let Some(matter) = catalogue.matters.get(&step.matter) else {
            continue;
        };
        for config in &matter.materials {
            match out.iter_mut().find(|m| m.config.code == config.code) {
                Some(known) => {
                    known.config = merged(&known.config, config);
                    known.steps.push(step);
                }
                None => out.push(ServiceMaterial {
                    config: config.clone(),
                    steps: vec![step],
                }),
            }
        }
    }
    out
}

/// What both definitions of one material accept.
fn merged(a: &MaterialConfig, b: &MaterialConfig) -> MaterialConfig {
    let strictness = |need: Need| match need {
        Need::Required => 2,
        Need::Deferrable => 1,
        Need::Optional => 0,
    };
    let limit =
        |mib: Option<u32>| mib.unwrap_or(gateway_base::config::materials::DEFAULT_MATERIAL_MIB);
    MaterialConfig {
        code: a.code.clone(),
        name: a.name.clone(),
        need: if strictness(b.need) > strictness(a.need) {
            b.need
        } else {
            a.need
        },
        formats: a
            .formats
            .iter()
            .copied()
            .filter(|f| b.formats.contains(f))
            .collect(),
        max_mib: match (a.max_mib, b.max_mib) {
            (None, None) => None,
            (x, y) => Some(limit(x).min(limit(y))),
        },
        obtain: if a.obtain == b.obtain {
            a.obtain.clone()
        } else {
            None
        },
        // The shorter promise holds for both.
        commitment_days: match (a.commitment_days, b.commitment_days) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        },
    }
}

fn problem(code: &str, kind: &str, message: impl Into<String>) -> FieldProblem {
    FieldProblem::new(format!("materials.{code}"), kind, message)
}

fn format_names(formats: &[MaterialFormat]) -> String {
    formats
        .iter()
        .map(|f| f.name().to_uppercase())
        .collect::<Vec<_>>()
        .join("、")
}

fn refused(code: &str, refusal: Refusal) -> CaseError {
    let problem = match refusal {
        Refusal::Empty => problem(code, "empty", "文件为空"),
        Refusal::Format(message) => problem(code, "format", message),
        Refusal::Truncated(format) => problem(
            code,
            "truncated",
            format!(
                "文件不完整：{} 文件在应有的结尾之前中断",
                format.name().to_uppercase()
            ),
        ),
    };
    CaseError::InvalidInput(vec![problem])
}

fn not_taken(material: &MaterialConfig, found: MaterialFormat) -> CaseError {
    CaseError::InvalidInput(vec![problem(
        &material.code,
        "format",
        format!(
            "{}只接受 {} 格式，收到的是 {} 文件",
            material.name,
            format_names(&material.formats),
            found.name().to_uppercase()
        ),
    )])
}

impl Orchestrator {
    /// The limits uploads run under now.
    pub fn material_settings(&self) -> Arc<MaterialSettings> {
        self.materials.load_full()
    }

    /// Run uploads and retention under these limits from now on (start-up, a reload).
    pub fn configure_materials(&self, settings: MaterialSettings) {
        self.materials.store(Arc::new(settings));
    }

    /// The materials of a service's form: every material of its matters once.
    pub fn form_materials(&self, catalogue: &Catalogue, service: &Service) -> Vec<FormMaterial> {
        let cap = self.material_settings().cap_mib;
        service_materials(catalogue, service)
            .into_iter()
            .map(|m| {
                let mut matters: Vec<String> = m.steps.iter().map(|s| s.matter.clone()).collect();
                matters.dedup();
                FormMaterial {
                    code: m.config.code.clone(),
                    name: m.config.name.clone(),
                    need: m.config.need,
                    formats: m.config.formats.clone(),
                    max_mib: m.config.max_mib(cap),
                    matters,
                    obtain: m.config.obtain.clone(),
                }
            })
            .collect()
    }

    /// Open a draft of an application to `service` for `client` (whose `apply:<service>` the
    /// caller checked).
    pub async fn create_draft(
        &self,
        client: &str,
        service: &str,
    ) -> Result<DraftCreated, CaseError> {
        if !self.catalogue().services.contains_key(service) {
            return Err(CaseError::NotFound {
                what: "service",
                id: service.into(),
            });
        }
        let id = uuid::Uuid::now_v7().to_string();
        let draft = self.store.create_draft(&id, client, service).await?;
        tracing::info!(draft = %id, %service, "draft opened");
        Ok(DraftCreated {
            draft_id: draft.id,
            service: draft.service,
            expires_at: rfc3339(draft.updated_at + self.material_settings().draft_ttl_ms),
        })
    }

    /// A draft the applicant may use: theirs, for a service they may apply for, not expired.
    /// Anything else is "not found", like a draft that does not exist: another client's
    /// drafts are not the asker's business.
    async fn own_draft(
        &self,
        applicant: &Applicant<'_>,
        id: &str,
    ) -> Result<gateway_store::materials::Draft, CaseError> {
        let ttl = self.material_settings().draft_ttl_ms;
        self.store
            .draft(id)
            .await?
            .filter(|d| {
                d.client == applicant.client
                    && (applicant.may_apply)(&d.service)
                    && d.updated_at + ttl > now_ms()
            })
            .ok_or_else(|| CaseError::NotFound {
                what: "draft",
                id: id.into(),
            })
    }

    /// What a draft holds.
    pub async fn draft_view(
        &self,
        applicant: &Applicant<'_>,
        id: &str,
    ) -> Result<DraftView, CaseError> {
        let draft = self.own_draft(applicant, id).await?;
        let materials = self.store.draft_materials(id).await?;
        let catalogue = self.catalogue();
        let listed = catalogue
            .services
            .get(&draft.service)
            .map(|s| service_materials(&catalogue, s))
            .unwrap_or_default();
        let ttl = self.material_settings().draft_ttl_ms;
        Ok(DraftView {
            draft_id: draft.id,
            service: draft.service,
            created_at: rfc3339(draft.created_at),
            updated_at: rfc3339(draft.updated_at),
            expires_at: rfc3339(draft.updated_at + ttl),
            materials: materials
                .into_iter()
                .map(|m| DraftMaterialView {
                    name: listed
                        .iter()
                        .find(|l| l.config.code == m.code)
                        .map(|l| l.config.name.clone()),
                    code: m.code,
                    media_type: m.blob.media_type,
                    size: m.blob.size,
                    sm3: m.blob.sm3,
                    uploaded_at: rfc3339(m.uploaded_at),
                })
                .collect(),
        })
    }

    /// Remove one material from a draft (to upload it again).
    pub async fn remove_from_draft(
        &self,
        applicant: &Applicant<'_>,
        id: &str,
        code: &str,
    ) -> Result<(), CaseError> {
        self.own_draft(applicant, id).await?;
        if self.store.remove_draft_material(id, code).await? {
            Ok(())
        } else {
            Err(CaseError::NotFound {
                what: "material",
                id: code.into(),
            })
        }
    }

    /// Store an uploaded material in a draft: see the module doc. `declared` is the body's
    /// declared length, if any (a body declared larger than the material takes is refused
    /// before it is read). The body is read up to where it is refused; the caller decides what
    /// to do with the rest.
    pub async fn upload_to_draft<S, B, E>(
        &self,
        applicant: &Applicant<'_>,
        draft_id: &str,
        code: &str,
        declared: Option<u64>,
        body: &mut S,
    ) -> Result<StoredMaterial, CaseError>
    where
        S: futures::Stream<Item = Result<B, E>> + Unpin + Send,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let draft = self.own_draft(applicant, draft_id).await?;
        let catalogue = self.catalogue();
        let material = material_of(&catalogue, &draft.service, code)?;
        if self
            .store
            .draft_materials(draft_id)
            .await?
            .iter()
            .any(|m| m.code == code)
        {
            return Err(already(code));
        }
        let (writer, format) = self.receive(&material, declared, body).await?;
        let attach = Attach::Draft { draft_id, code };
        match writer.finish(format.media_type(), attach).await? {
            Attached::Stored(blob) => {
                tracing::info!(draft = %draft_id, material = %code, size = blob.size, sm3 = %blob.sm3, "material uploaded");
                Ok(StoredMaterial {
                    code: code.into(),
                    media_type: blob.media_type,
                    size: blob.size,
                    sm3: blob.sm3,
                })
            }
            Attached::Taken => Err(already(code)),
            Attached::Gone => Err(CaseError::NotFound {
                what: "draft",
                id: draft_id.into(),
            }),
        }
    }

    /// Store an uploaded material of a stored case (a supplement, or one promised under
    /// 容缺受理): the applicant's own case, a material its service lists, not provided yet.
    pub async fn upload_to_case<S, B, E>(
        &self,
        applicant: &Applicant<'_>,
        case_id: &str,
        code: &str,
        declared: Option<u64>,
        body: &mut S,
    ) -> Result<StoredMaterial, CaseError>
    where
        S: futures::Stream<Item = Result<B, E>> + Unpin + Send,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let case = self
            .store
            .case(case_id)
            .await?
            .filter(|c| {
                c.client.as_deref() == Some(applicant.client) && (applicant.may_apply)(&c.service)
            })
            .ok_or_else(|| CaseError::NotFound {
                what: "case",
                id: case_id.into(),
            })?;
        let catalogue = self.catalogue();
        let material = material_of(&catalogue, &case.service, code)?;
        let current = self.store.case_materials(case_id).await?;
        let promised = current
            .iter()
            .any(|m| m.code == code && matches!(m.source, MaterialSource::Promised { .. }));
        // 补正: a material a returned step asks for anew replaces the one the case has.
        let asked_anew = self.asked_anew(case_id, code).await?;
        if !asked_anew
            && current
                .iter()
                .any(|m| m.code == code && !matches!(m.source, MaterialSource::Promised { .. }))
        {
            return Err(already(code));
        }
        let (writer, format) = self.receive(&material, declared, body).await?;
        let attach = Attach::Case {
            case_id,
            code,
            name: &material.name,
            replace: asked_anew,
        };
        match writer.finish(format.media_type(), attach).await? {
            Attached::Stored(blob) => {
                tracing::info!(case = %case_id, material = %code, size = blob.size, sm3 = %blob.sm3, "case material uploaded");
                if promised {
                    // 容缺 fulfilled: the steps at their departments get it.
                    self.material_supplied(case_id, code).await?;
                }
                Ok(StoredMaterial {
                    code: code.into(),
                    media_type: blob.media_type,
                    size: blob.size,
                    sm3: blob.sm3,
                })
            }
            Attached::Taken | Attached::Gone => Err(already(code)),
        }
    }

    /// Stream a body into the store: at most the material's size, within the upload's time
    /// and without a long pause, a format the material takes, whole. On any refusal what was
    /// stored is removed before the error is returned.
    async fn receive<S, B, E>(
        &self,
        material: &MaterialConfig,
        declared: Option<u64>,
        body: &mut S,
    ) -> Result<(BlobWriter, MaterialFormat), CaseError>
    where
        S: futures::Stream<Item = Result<B, E>> + Unpin + Send,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        use futures::StreamExt;
        let settings = self.material_settings();
        let limit = material.max_bytes(settings.cap_mib);
        if declared.is_some_and(|n| n > limit) {
            return Err(CaseError::TooLarge { limit_bytes: limit });
        }
        let mut writer = self.store.blob_writer(settings.chunk_bytes).await?;
        let mut sniffer = Sniffer::default();
        let mut format_checked = false;
        let start = tokio::time::Instant::now();
        let deadline = start + Duration::from_millis(settings.upload_timeout_ms);
        let stall = Duration::from_millis(settings.stall_ms);
        let failure = loop {
            let wait = deadline.min(tokio::time::Instant::now() + stall);
            let piece = match tokio::time::timeout_at(wait, body.next()).await {
                Err(_) => {
                    let stalled = tokio::time::Instant::now() < deadline;
                    break CaseError::UploadTimeout {
                        ms: if stalled {
                            settings.stall_ms
                        } else {
                            settings.upload_timeout_ms
                        },
                        stalled,
                    };
                }
                Ok(None) => {
                    break match sniffer.finish() {
                        Err(refusal) => refused(&material.code, refusal),
                        Ok(format) if !material.formats.contains(&format) => {
                            not_taken(material, format)
                        }
                        Ok(format) => return Ok((writer, format)),
                    };
                }
                Ok(Some(Err(e))) => break CaseError::UploadIncomplete(e.to_string()),
                Ok(Some(Ok(piece))) => piece,
            };
            let piece = piece.as_ref();
            if writer.size() + piece.len() as u64 > limit {
                break CaseError::TooLarge { limit_bytes: limit };
            }
            sniffer.push(piece);
            if !format_checked && let Some(found) = sniffer.format() {
                format_checked = true;
                match found {
                    Err(refusal) => break refused(&material.code, refusal),
                    Ok(format) if !material.formats.contains(&format) => {
                        break not_taken(material, format);
                    }
                    Ok(_) => {}
                }
            }
            if let Err(e) = writer.write(piece).await {
                break e.into();
            }
        };
        if let Err(e) = writer.abort().await {
            tracing::warn!(error = %e, "removing a refused upload failed; the sweep will");
        }
        Err(failure)
    }

    /// Pre-review and the materials of a draft: see [`Orchestrator::review`]; the draft must be
    /// the client's and for this service.
    pub async fn review_with_draft(
        &self,
        service_code: &str,
        form: &Value,
        client: &str,
        draft_id: &str,
    ) -> Result<Review, CaseError> {
        let catalogue = self.catalogue();
        let provided = self
            .provided_in_draft(Some(client), draft_id, service_code)
            .await?;
        self.review_in(&catalogue, service_code, form, Some(&provided))
            .await
    }

    /// The materials of a draft an application names: the client's own, for this service, not
    /// expired (else "not found").
    pub(crate) async fn provided_in_draft(
        &self,
        client: Option<&str>,
        draft_id: &str,
        service: &str,
    ) -> Result<Vec<DraftMaterial>, CaseError> {
        let ttl = self.material_settings().draft_ttl_ms;
        let draft = self
            .store
            .draft(draft_id)
            .await?
            .filter(|d| {
                Some(d.client.as_str()) == client
                    && d.service == service
                    && d.updated_at + ttl > now_ms()
            })
            .ok_or_else(|| CaseError::NotFound {
                what: "draft",
                id: draft_id.into(),
            })?;
        Ok(self.store.draft_materials(&draft.id).await?)
    }

    /// The materials part of a pre-review: see the module doc. `provided` is what the draft
    /// holds (none without a draft).
    pub(crate) async fn review_materials(
        &self,
        catalogue: &Catalogue,
        service: &Service,
        form: &Value,
        lookups: &Value,
        provided: Option<&[DraftMaterial]>,
    ) -> Result<MaterialsOutcome, CaseError> {
        let cap = self.material_settings().cap_mib;
        let mut out = MaterialsOutcome::default();
        for m in service_materials(catalogue, service) {
            let c = &m.config;
            let name = c.name.clone();
            let file = provided.and_then(|p| p.iter().find(|p| p.code == c.code));
            if let Some(file) = file {
                let format = MaterialFormat::of_media_type(&file.blob.media_type);
                match format {
                    Some(f) if !c.formats.contains(&f) => out.problems.push(problem(
                        &c.code,
                        "format",
                        format!(
                            "{name}只接受 {} 格式，草稿中的是 {} 文件",
                            format_names(&c.formats),
                            f.name().to_uppercase()
                        ),
                    )),
                    None => out
                        .problems
                        .push(problem(&c.code, "format", "文件格式无法识别")),
                    Some(_) if file.blob.size > c.max_bytes(cap) => out.problems.push(problem(
                        &c.code,
                        "too_large",
                        format!("{name}不能超过 {} MiB", c.max_mib(cap)),
                    )),
                    Some(_) => out.for_case.push(NewCaseMaterial {
                        code: c.code.clone(),
                        name,
                        source: NewMaterialSource::File {
                            sm3: file.blob.sm3.clone(),
                        },
                    }),
                }
                continue;
            }
            if let Some((obtained, source)) =
                self.obtain(catalogue, service, &m, form, lookups).await?
            {
                out.review.obtained.push(obtained);
                if let Some(source) = source {
                    out.for_case.push(NewCaseMaterial {
                        code: c.code.clone(),
                        name,
                        source,
                    });
                }
                continue;
            }
            match c.need {
                Need::Required => out.problems.push(problem(
                    &c.code,
                    "required",
                    format!("缺少必要材料：{name}"),
                )),
                Need::Deferrable => {
                    out.review.deferrable.push(c.code.clone());
                    // 容缺: the commitment falls due `commitment_days` working days after
                    // receipt (the receipt day not counted, as for a limit).
                    let due = crate::lifecycle::commitments::due_date(
                        self.deadlines().calendar(),
                        gateway_base::time::now_ms(),
                        c.commitment_days,
                    );
                    out.for_case.push(NewCaseMaterial {
                        code: c.code.clone(),
                        name,
                        source: NewMaterialSource::Promised { due: Some(due) },
                    });
                }
                Need::Optional => {}
            }
        }
        Ok(out)
    }

    /// Whether the gateway obtains a material itself for this application, how, and what the
    /// case records for it (nothing for a lookup: the lookup's record stays with the case).
    async fn obtain(
        &self,
        catalogue: &Catalogue,
        service: &Service,
        material: &ServiceMaterial<'_>,
        form: &Value,
        lookups: &Value,
    ) -> Result<Option<(ObtainedMaterial, Option<NewMaterialSource>)>, CaseError> {
        let code = material.config.code.clone();
        match &material.config.obtain {
            None => Ok(None),
            Some(Obtain::Lookup { lookup }) => {
                // A verification (`result`) stands in only when it matched.
                let found = lookups.get(lookup).is_some_and(|answer| {
                    answer.is_object()
                        && answer
                            .get("result")
                            .is_none_or(|r| r.as_str() == Some("match"))
                });
                Ok(found.then(|| {
                    let obtained = ObtainedMaterial {
                        code,
                        by: ObtainedBy::Lookup,
                        detail: format!("由共享核验 `{lookup}` 的结果代替"),
                    };
                    (obtained, None)
                }))
            }
            Some(Obtain::Licence { licence, holder }) => {
                let Some(kind) = crate::licences::KINDS.iter().find(|k| k.kind == licence) else {
                    return Ok(None);
                };
                let holder_path: Vec<String> = holder.split('.').map(str::to_string).collect();
                for step in &material.steps {
                    let input = match &step.input {
                        None => form.clone(),
                        Some(mapping) => Sources {
                            form: Some(form),
                            lookups: Some(lookups),
                            outputs: Default::default(),
                        }
                        .build_input(mapping),
                    };
                    if let Some(id) = get_path(&input, &holder_path)
                        .and_then(Value::as_str)
                        .map(str::trim)
                        .filter(|id| !id.is_empty())
                    {
                        let held = self.store.licences_of_holder(kind.holder_kind, id).await?;
                        if let Some(l) = held.iter().rev().find(|l| l.kind == kind.kind) {
                            let obtained = ObtainedMaterial {
                                code,
                                by: ObtainedBy::Licence,
                                detail: format!("电子证照库中的{}（{}）", l.name, l.id),
                            };
                            let source = NewMaterialSource::Licence {
                                id: l.id.clone(),
                                kind: l.kind.clone(),
                            };
                            return Ok(Some((obtained, Some(source))));
                        }
                    }
                    if let Some(issuer) = waits_for(service, step).into_iter().find(|s| {
                        crate::licences::kind_of(&s.matter).is_some_and(|k| k.kind == kind.kind)
                    }) {
                        let matter = catalogue
                            .matters
                            .get(&issuer.matter)
                            .map_or(issuer.matter.as_str(), |m| m.name.as_str());
                        let obtained = ObtainedMaterial {
                            code,
                            by: ObtainedBy::Step,
                            detail: format!(
                                "由本次申请的“{matter}”（环节 {}）办结后签发的{}",
                                issuer.id, kind.name
                            ),
                        };
                        let source = NewMaterialSource::IssuedByStep {
                            kind: kind.kind.to_string(),
                        };
                        return Ok(Some((obtained, Some(source))));
                    }
                }
                Ok(None)
            }
        }
    }

    /// Remove expired drafts, uploads whose node died, and files nothing refers to, as of
    /// `now` (Unix ms).
    pub async fn sweep_materials(&self, now: i64) -> Result<Swept, StoreError> {
        let settings = self.material_settings();
        let store: &Store = &self.store;
        let swept = Swept {
            drafts: store
                .remove_expired_drafts(now - settings.draft_ttl_ms)
                .await?,
            uploads: store
                .remove_stale_uploads(now - settings.upload_timeout_ms as i64 - STALE_MARGIN_MS)
                .await?,
            blobs: store.remove_unreferenced_blobs().await?,
        };
        if swept != Swept::default() {
            tracing::info!(
                drafts = swept.drafts,
                uploads = swept.uploads,
                files = swept.blobs,
                "expired materials removed"
            );
        }
        Ok(swept)
    }

    /// Sweep expired materials every minute until `stopped`.
    pub async fn run_material_sweeper(
        self: Arc<Self>,
        mut stopped: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            if let Err(e) = self.sweep_materials(now_ms()).await {
                tracing::warn!(error = %e, "sweeping expired materials failed; trying again later");
            }
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(SWEEP_EVERY) => {}
            }
        }
    }
}

fn already(code: &str) -> CaseError {
    CaseError::Conflict(format!(
        "material `{code}` is provided already: delete it first to replace it"
    ))
}

/// A material a service lists, by code (else "not found").
fn material_of(
    catalogue: &Catalogue,
    service: &str,
    code: &str,
) -> Result<MaterialConfig, CaseError> {
    catalogue
        .services
        .get(service)
        .and_then(|s| {
            service_materials(catalogue, s)
                .into_iter()
                .find(|m| m.config.code == code)
                .map(|m| m.config.clone())
        })
        .ok_or_else(|| CaseError::NotFound {
            what: "material",
            id: code.into(),
        })
}

/// The steps `step` waits for, directly or through others.
fn waits_for<'s>(service: &'s Service, step: &ServiceStep) -> Vec<&'s ServiceStep> {
    let mut found: Vec<&'s ServiceStep> = Vec::new();
    let mut todo: Vec<&str> = step.after.iter().map(String::as_str).collect();
    while let Some(id) = todo.pop() {
        if let Some(s) = service.step(id)
            && !found.iter().any(|f| f.id == s.id)
        {
            found.push(s);
            todo.extend(s.after.iter().map(String::as_str));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_base::config::materials::DEFAULT_MATERIAL_MIB;

    fn material(need: Need, formats: &[MaterialFormat], max_mib: Option<u32>) -> MaterialConfig {
        MaterialConfig {
            code: "premises-proof".into(),
            name: "住所使用证明".into(),
            need,
            formats: formats.to_vec(),
            max_mib,
            obtain: None,
            commitment_days: None,
        }
    }

    #[test]
    fn a_material_two_matters_list_asks_what_both_take() {
        use MaterialFormat::{Jpeg, Ofd, Pdf, Png};
        let market = material(Need::Deferrable, &[Pdf, Jpeg, Png], Some(10));
        let tax = MaterialConfig {
            name: "经营场所证明".into(),
            ..material(Need::Required, &[Pdf, Ofd, Jpeg], None)
        };
        let both = merged(&market, &tax);
        assert_eq!(both.name, "住所使用证明", "the first matter's name");
        assert_eq!(both.need, Need::Required, "the strictest need");
        assert_eq!(both.formats, vec![Pdf, Jpeg], "the formats both accept");
        assert_eq!(both.max_mib, Some(10));
        let loose = merged(&material(Need::Optional, &[Pdf], None), &market);
        assert_eq!(loose.need, Need::Deferrable);
        assert_eq!(loose.max_mib, Some(10.min(DEFAULT_MATERIAL_MIB)));
        let unset = merged(
            &material(Need::Optional, &[Pdf], None),
            &material(Need::Optional, &[Pdf], None),
        );
        assert_eq!(
            unset.max_mib, None,
            "the default stays the default (under the cap)"
        );
        let obtained = MaterialConfig {
            obtain: Some(Obtain::Lookup {
                lookup: "representative".into(),
            }),
            ..market.clone()
        };
        assert!(merged(&obtained, &obtained).obtain.is_some());
        assert_eq!(
            merged(&obtained, &tax).obtain,
            None,
            "obtained for one matter only: asked"
        );
    }

    #[test]
    fn the_licence_kinds_the_config_accepts_are_those_issued() {
        let issued: Vec<&str> = crate::licences::KINDS.iter().map(|k| k.kind).collect();
        assert_eq!(issued, gateway_base::config::materials::LICENCE_KINDS);
    }
}
