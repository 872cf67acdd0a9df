//! What the unified API shows: the catalogue, a service's form, a pre-review, a case with its
//! matters and timeline, licences and the subject views. These are the types the HTTP handlers
//! answer with, and the OpenAPI document is generated from them, so the document cannot drift
//! from the answers. Times are RFC 3339 in Beijing time.
//!
//! A field that is always present but may be `null` is `required` and nullable in the schema; a
//! field that may be absent is not `required`.

use crate::catalogue::Service;
pub use crate::catalogue::ServiceKind;
use crate::licences::ISSUERS;
use crate::{CaseError, CaseStatus, Orchestrator, Review};
use gateway_base::model::{Clerk, EventKind, FieldProblem, StepState};
use gateway_base::time::{now_ms, rfc3339};
use gateway_store::licences::{HolderKind, Licence};
use gateway_store::{CaseRecord, EventRecord};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Any JSON object: a form, a query, an answer whose fields the catalogue or the adapter
/// describes.
pub type Object = serde_json::Map<String, Value>;

/// A matter (事项) of the catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct MatterView {
    /// Matter code, e.g. `tax.registration`.
    pub code: String,
    /// Name.
    pub name: String,
    /// Department id that decides it.
    pub department: String,
    /// 事项类型 (GB/T 39046): `01` 许可 … `20` 公共服务.
    pub matter_type: String,
    /// 服务对象: `1` 自然人, `2` 企业法人 ….
    pub service_object: String,
    /// Promised time limit (承诺时限), in working days.
    pub time_limit_days: u32,
}

/// One step of a service.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepView {
    /// Step id within the service.
    pub id: String,
    /// Matter code.
    pub matter: String,
    /// Steps whose approval this one waits for.
    pub after: Vec<String>,
}

/// A service a portal applies for.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceView {
    /// Service code.
    pub code: String,
    /// Name.
    pub name: String,
    /// `single` or `one-thing`.
    pub kind: ServiceKind,
    /// What the applicant gets done.
    pub description: String,
    /// The steps.
    pub steps: Vec<StepView>,
}

/// A shared-data lookup.
#[derive(Debug, Serialize, ToSchema)]
pub struct LookupView {
    /// Lookup name, e.g. `tax.clearance`.
    pub name: String,
    /// What it finds.
    pub description: String,
    /// The department that answers it.
    pub department: String,
}

/// The catalogue.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Catalogue)]
pub struct CatalogueView {
    /// Every matter.
    pub matters: Vec<MatterView>,
    /// Every service.
    pub services: Vec<ServiceView>,
    /// Every lookup.
    pub lookups: Vec<LookupView>,
}

/// The one form of a service.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Form)]
pub struct FormView {
    /// Service code.
    pub service: String,
    /// Name.
    pub name: String,
    /// `single` or `one-thing`.
    pub kind: ServiceKind,
    /// The steps.
    pub steps: Vec<StepView>,
    /// The form as one JSON Schema, with Chinese titles.
    pub schema: Object,
    /// The materials of all its matters, each once (upload them into a draft:
    /// `POST /api/v1/services/{code}/drafts`).
    pub materials: Vec<crate::materials::FormMaterial>,
}

/// The outcome of a pre-review.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreReview {
    /// True when there is no problem.
    pub ok: bool,
    /// Every problem at once (一次性告知).
    pub problems: Vec<FieldProblem>,
    /// Lookup ids whose records the gateway obtained itself (their content stays inside).
    pub obtained: Vec<String>,
    /// The materials the gateway obtains itself (免提交) and those that may come later (容缺).
    pub materials: crate::materials::MaterialsReview,
}

/// A warning light (红黄牌), re-exported here for the case view.
pub use crate::deadlines::Light;

/// One matter of a case.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseMatter {
    /// Step id.
    pub step: String,
    /// Matter code.
    pub matter: String,
    /// Matter name; null when the matter left the catalogue.
    #[schema(required = true)]
    pub matter_name: Option<String>,
    /// Department id.
    pub department: String,
    /// State.
    pub state: StepState,
    /// The department's own reference, once it has one.
    #[schema(required = true)]
    pub reference: Option<String>,
    /// What the department returned (a new credit code …).
    pub outputs: Object,
    /// The department's or the gateway's last word on the step.
    #[schema(required = true)]
    pub message: Option<String>,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Last change, RFC 3339.
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// End of the promised time limit, RFC 3339; null when the matter left the catalogue.
    #[schema(required = true, format = DateTime)]
    pub deadline: Option<String>,
    /// The light while open; null once final.
    #[schema(required = true)]
    pub light: Option<Light>,
    /// Whether a final step finished after its deadline; null while open.
    #[schema(required = true)]
    pub finished_late: Option<bool>,
    /// While returned (补正): what the department asks the applicant to supplement, by when;
    /// null otherwise.
    #[schema(required = true)]
    pub requested: Option<crate::lifecycle::views::Requested>,
    /// The clock: running, paused while returned, stopped once final; the working days spent
    /// returned. Null when the matter left the catalogue.
    #[schema(required = true)]
    pub clock: Option<crate::lifecycle::views::Clock>,
}

/// One event of a case's timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct Event {
    /// When, RFC 3339.
    #[schema(format = DateTime)]
    pub at: String,
    /// Department id, for step events.
    #[schema(required = true)]
    pub department: Option<String>,
    /// Step id, for step events.
    #[schema(required = true)]
    pub step: Option<String>,
    /// What happened.
    pub kind: EventKind,
    /// The step's state after the event.
    #[schema(required = true)]
    pub state: Option<StepState>,
    /// What happened, in words.
    #[schema(required = true)]
    pub message: Option<String>,
    /// Who acted at the hall.
    #[schema(required = true)]
    pub clerk: Option<Clerk>,
}

impl From<&EventRecord> for Event {
    fn from(e: &EventRecord) -> Event {
        Event {
            at: rfc3339(e.at),
            department: e.department.clone(),
            step: e.step.clone(),
            kind: e.kind,
            state: e.state,
            message: e.message.clone(),
            clerk: e.clerk.clone(),
        }
    }
}

/// Links of a licence.
#[derive(Debug, Serialize, ToSchema)]
pub struct LicenceLinks {
    /// This licence.
    #[serde(rename = "self")]
    pub this: String,
    /// The case that issued it.
    pub case: String,
}

/// An electronic licence (电子证照).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Licence)]
pub struct LicenceView {
    /// GB/T 36904 identifier.
    pub id: String,
    /// Licence kind.
    pub kind: String,
    /// Name, e.g. 营业执照.
    pub name: String,
    /// The department's number.
    pub number: String,
    /// Whose it is.
    pub holder_kind: HolderKind,
    /// Credit code or identity number.
    pub holder_id: String,
    /// Holder's name, when known.
    #[schema(required = true)]
    pub holder_name: Option<String>,
    /// Issuing department id.
    pub issuer: String,
    /// Issuing authority's unified social credit code.
    pub issuer_code: String,
    /// Issuing authority's name.
    #[schema(required = true)]
    pub issuer_name: Option<String>,
    /// The case that issued it.
    pub case_id: String,
    /// The step that issued it.
    pub step: String,
    /// When, RFC 3339.
    #[schema(format = DateTime)]
    pub issued_at: String,
    /// The licence's content: the department's outputs as they came.
    pub data: Object,
    /// Links.
    pub links: LicenceLinks,
}

impl From<&Licence> for LicenceView {
    fn from(l: &Licence) -> LicenceView {
        LicenceView {
            id: l.id.clone(),
            kind: l.kind.clone(),
            name: l.name.clone(),
            number: l.number.clone(),
            holder_kind: l.holder_kind,
            holder_id: l.holder_id.clone(),
            holder_name: l.holder_name.clone(),
            issuer: l.issuer.clone(),
            issuer_code: l.id.split('.').nth(6).unwrap_or_default().to_string(),
            issuer_name: ISSUERS
                .iter()
                .find(|i| i.department == l.issuer)
                .map(|i| i.name.to_string()),
            case_id: l.case_id.clone(),
            step: l.step.clone(),
            issued_at: rfc3339(l.issued_at),
            data: serde_json::from_str(&l.data).unwrap_or_default(),
            links: LicenceLinks {
                this: format!("/api/v1/licences/{}", l.id),
                case: format!("/api/v1/cases/{}", l.case_id),
            },
        }
    }
}

/// A case.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Case)]
pub struct CaseView {
    /// Case id.
    pub case_id: String,
    /// Service code.
    pub service: String,
    /// Aggregated status.
    pub status: CaseStatus,
    /// When received, RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Each matter.
    pub matters: Vec<CaseMatter>,
    /// The timeline, oldest first.
    pub timeline: Vec<Event>,
    /// Licences the case issued.
    pub licences: Vec<LicenceView>,
    /// 容缺: materials the applicant committed to provide later, not yet provided.
    pub commitments: Vec<crate::lifecycle::views::Commitment>,
    /// The applicant's withdrawal (撤回), if the case was withdrawn.
    #[schema(required = true)]
    pub withdrawn: Option<crate::lifecycle::views::Withdrawn>,
}

/// A case in a list: one line of the 企业码 view.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseSummary {
    /// Case id.
    pub case_id: String,
    /// Service code.
    pub service: String,
    /// Aggregated status.
    pub status: CaseStatus,
    /// When received, RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// The 企业码 view of an enterprise: its licences and its cases.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Enterprise)]
pub struct EnterpriseView {
    /// Unified social credit code.
    pub credit_code: String,
    /// Its licences.
    pub licences: Vec<LicenceView>,
    /// Its cases.
    pub cases: Vec<CaseSummary>,
}

/// A person's licences.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Person)]
pub struct PersonView {
    /// Resident identity number.
    pub id_number: String,
    /// Their licences.
    pub licences: Vec<LicenceView>,
}

/// A lookup's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct LookupAnswer {
    /// Lookup name.
    pub lookup: String,
    /// The department that answered.
    pub department: String,
    /// The answer, in the unified shape of the lookup.
    pub result: Object,
}

/// What the API document says about the catalogue being served: each service's form and each
/// lookup's query, each with an example, so the document gives portals typed bodies. The
/// document is made from these when it is asked for, so it follows reloads and adapter swaps.
#[derive(Debug, Clone, Default)]
pub struct ApiShapes {
    /// Every service, by code.
    pub services: Vec<ServiceShape>,
    /// Every lookup a serving adapter offers, by name.
    pub lookups: Vec<LookupShape>,
}

/// A service's form in the document.
#[derive(Debug, Clone)]
pub struct ServiceShape {
    /// Service code.
    pub code: String,
    /// Name.
    pub name: String,
    /// The form (JSON Schema).
    pub form: Value,
    /// A filled form that passes it.
    pub example: Option<Value>,
}

/// A lookup's query in the document.
#[derive(Debug, Clone)]
pub struct LookupShape {
    /// Lookup name.
    pub name: String,
    /// What it finds.
    pub description: String,
    /// The department that answers it.
    pub department: String,
    /// The query (JSON Schema, the adapter's own).
    pub query: Value,
    /// A query: the schema's own first `examples`, else one made from a service's example
    /// through that service's query mapping.
    pub example: Option<Value>,
}

fn service_view(s: &Service) -> ServiceView {
    ServiceView {
        code: s.code.clone(),
        name: s.name.clone(),
        kind: s.kind,
        description: s.description.clone(),
        steps: steps_view(s),
    }
}

fn steps_view(s: &Service) -> Vec<StepView> {
    s.steps
        .iter()
        .map(|step| StepView {
            id: step.id.clone(),
            matter: step.matter.clone(),
            after: step.after.clone(),
        })
        .collect()
}

impl Orchestrator {
    /// The catalogue: matters, services, and the lookups the serving adapters offer.
    pub fn catalogue_view(&self) -> CatalogueView {
        let catalogue = self.catalogue();
        let matters = catalogue
            .matters
            .values()
            .map(|m| MatterView {
                code: m.code.clone(),
                name: m.name.clone(),
                department: m.department.clone(),
                matter_type: m.matter_type.clone(),
                service_object: m.service_object.clone(),
                time_limit_days: m.time_limit_days,
            })
            .collect();
        let services = catalogue.services.values().map(service_view).collect();
        let lookups = self
            .adapters()
            .all()
            .iter()
            .flat_map(|a| {
                let department = a.description().department.clone();
                a.description()
                    .lookups
                    .iter()
                    .map(move |l| LookupView {
                        name: l.name.clone(),
                        description: l.description.clone(),
                        department: department.clone(),
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        CatalogueView {
            matters,
            services,
            lookups,
        }
    }

    /// The services' forms and the lookups' queries, for the API document.
    pub fn api_shapes(&self) -> ApiShapes {
        let catalogue = self.catalogue();
        let services: Vec<ServiceShape> = catalogue
            .services
            .values()
            .map(|s| ServiceShape {
                code: s.code.clone(),
                name: s.name.clone(),
                form: s.form.clone(),
                example: s.example.clone(),
            })
            .collect();
        let mut lookups: Vec<LookupShape> = Vec::new();
        for adapter in self.adapters().all() {
            let description = adapter.description();
            for lookup in &description.lookups {
                let Ok(query) = serde_json::from_str::<Value>(&lookup.input_schema) else {
                    continue;
                };
                let example = query["examples"].get(0).cloned().or_else(|| {
                    catalogue.services.values().find_map(|service| {
                        let form = service.example.as_ref()?;
                        let used = service.lookups.iter().find(|l| l.lookup == lookup.name)?;
                        let sources = crate::one_thing::Sources {
                            form: Some(form),
                            ..Default::default()
                        };
                        Some(sources.build_input(&used.query))
                    })
                });
                lookups.push(LookupShape {
                    name: lookup.name.clone(),
                    description: lookup.description.clone(),
                    department: description.department.clone(),
                    query,
                    example,
                });
            }
        }
        lookups.sort_by(|a, b| a.name.cmp(&b.name));
        lookups.dedup_by(|a, b| a.name == b.name);
        ApiShapes { services, lookups }
    }

    /// The one form of a service.
    pub fn form_view(&self, code: &str) -> Result<FormView, CaseError> {
        let catalogue = self.catalogue();
        let service = catalogue
            .services
            .get(code)
            .ok_or_else(|| CaseError::NotFound {
                what: "service",
                id: code.to_string(),
            })?;
        Ok(FormView {
            service: service.code.clone(),
            name: service.name.clone(),
            kind: service.kind,
            steps: steps_view(service),
            schema: service.form.as_object().cloned().unwrap_or_default(),
            materials: self.form_materials(&catalogue, service),
        })
    }

    /// A stored case as the applicant sees it: its status, each matter with its deadline and
    /// light (红黄牌), the timeline, the licences it issued.
    pub async fn case_view(&self, record: &CaseRecord) -> Result<CaseView, CaseError> {
        let store = self.store();
        let steps = store.steps(&record.id).await?;
        let events = store.events(&record.id).await?;
        let licences = store.licences_of_case(&record.id).await?;
        let states: Vec<StepState> = steps.iter().map(|s| s.state).collect();
        let now = now_ms();
        let catalogue = self.catalogue();
        let lifecycles = store.step_lifecycles(&record.id).await?;
        let commitments = self.commitments_of(&record.id).await?;
        let withdrawn = store.withdrawal_of(&record.id).await?;
        let matters = steps
            .iter()
            .map(|s| {
                let matter = catalogue.matters.get(&s.matter);
                let lifecycle = lifecycles
                    .iter()
                    .find(|l| l.step == s.step)
                    .cloned()
                    .unwrap_or_default();
                let clock = matter.map(|m| {
                    self.deadlines().clock(
                        gateway_store::cases::limit_days(m.time_limit_days, lifecycle.paused_days),
                        gateway_store::cases::clock_start(record.created_at, lifecycle.clock_from),
                        s.state,
                        s.updated_at,
                        now,
                    )
                });
                let requested = (s.state == StepState::Returned)
                    .then_some(lifecycle.requested.as_ref())
                    .flatten()
                    .map(crate::lifecycle::views::Requested::from_stored);
                let clock_view = clock.map(|c| crate::lifecycle::views::Clock {
                    state: if s.state.is_paused() {
                        crate::lifecycle::views::ClockState::Paused
                    } else if s.state.is_final() {
                        crate::lifecycle::views::ClockState::Stopped
                    } else {
                        crate::lifecycle::views::ClockState::Running
                    },
                    paused_working_days: lifecycle.paused_days,
                    restarted: lifecycle.clock_from.is_some(),
                    remaining_working_days: c.remaining_working_days,
                });
                CaseMatter {
                    step: s.step.clone(),
                    matter: s.matter.clone(),
                    matter_name: matter.map(|m| m.name.clone()),
                    department: s.department.clone(),
                    state: s.state,
                    reference: s.reference.clone(),
                    outputs: s.outputs.as_object().cloned().unwrap_or_default(),
                    message: s.message.clone(),
                    attempts: s.attempts,
                    updated_at: rfc3339(s.updated_at),
                    deadline: clock.map(|c| rfc3339(c.deadline_ms)),
                    light: clock.and_then(|c| c.light),
                    finished_late: clock.and_then(|c| c.finished_late),
                    requested,
                    clock: clock_view,
                }
            })
            .collect();
        Ok(CaseView {
            case_id: record.id.clone(),
            service: record.service.clone(),
            status: CaseStatus::of(&states),
            created_at: rfc3339(record.created_at),
            matters,
            timeline: events.iter().map(Event::from).collect(),
            licences: licences.iter().map(LicenceView::from).collect(),
            commitments,
            withdrawn: withdrawn
                .map(|(at, _)| crate::lifecycle::views::Withdrawn { at: rfc3339(at) }),
        })
    }

    /// The 企业码 view of an enterprise by its (checked) credit code.
    pub async fn enterprise_view(&self, credit_code: &str) -> Result<EnterpriseView, CaseError> {
        let store = self.store();
        let licences = store
            .licences_of_holder(HolderKind::Enterprise, credit_code)
            .await?;
        let mut cases = Vec::new();
        for (case_id, service, created_at) in store.cases_of_enterprise(credit_code).await? {
            let states: Vec<StepState> = store
                .steps(&case_id)
                .await?
                .iter()
                .map(|s| s.state)
                .collect();
            cases.push(CaseSummary {
                case_id,
                service,
                status: CaseStatus::of(&states),
                created_at: rfc3339(created_at),
            });
        }
        Ok(EnterpriseView {
            credit_code: credit_code.to_string(),
            licences: licences.iter().map(LicenceView::from).collect(),
            cases,
        })
    }

    /// A person's licences by their (checked) identity number.
    pub async fn person_view(&self, id_number: &str) -> Result<PersonView, CaseError> {
        let licences = self
            .store()
            .licences_of_holder(HolderKind::Person, id_number)
            .await?;
        Ok(PersonView {
            id_number: id_number.to_string(),
            licences: licences.iter().map(LicenceView::from).collect(),
        })
    }

    /// One licence by its (checked) identifier.
    pub async fn licence_view(&self, id: &str) -> Result<LicenceView, CaseError> {
        self.store()
            .licence(id)
            .await?
            .as_ref()
            .map(LicenceView::from)
            .ok_or_else(|| CaseError::NotFound {
                what: "licence",
                id: id.to_string(),
            })
    }
}

impl Review {
    /// What the portal is told: every problem, and which records were obtained (not their
    /// content).
    pub fn view(&self) -> PreReview {
        PreReview {
            ok: self.problems.is_empty(),
            problems: self.problems.clone(),
            obtained: self
                .lookups
                .as_object()
                .map(|l| l.keys().cloned().collect())
                .unwrap_or_default(),
            materials: self.materials.review.clone(),
        }
    }
}
