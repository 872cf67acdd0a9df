//! The catalogue file: matters (事项) and "one thing" services (一件事), checked against each
//! other and against the departments.

use super::ConfigError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The catalogue file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CatalogueFile {
    #[serde(default)]
    pub(super) matters: BTreeMap<String, MatterConfig>,
    #[serde(default)]
    pub(super) services: BTreeMap<String, ServiceConfig>,
}

/// A "one thing" service (一件事): several matters, one form, one submission.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Name, e.g. `企业开办`.
    pub name: String,
    /// What the applicant gets done.
    #[serde(default)]
    pub description: String,
    /// Lookups run before submission; their answers fill matter inputs (四不提交) and feed rules.
    #[serde(default)]
    pub lookups: Vec<ServiceLookupConfig>,
    /// The matters, each a step; steps without `after` start at once, in parallel.
    pub steps: Vec<StepConfig>,
    /// Cross-field rules checked at pre-review.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Form fields used only by rules (not by any matter or lookup), as JSON Schema.
    #[serde(default)]
    pub fields: BTreeMap<String, toml::Value>,
    /// A filled form shown in the API document (checked against the form when the catalogue
    /// is built).
    pub example: Option<toml::Value>,
}

/// A lookup of a service: its query fields map to sources.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceLookupConfig {
    /// Id within the service, used in sources as `lookups.<id>.<path>`.
    pub id: String,
    /// Lookup name, e.g. `real-estate.property`.
    pub lookup: String,
    /// Query field (dotted path) → source.
    pub query: BTreeMap<String, String>,
}

/// One step of a service: a matter, what it waits for, and where its input comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// Id within the service, used in sources as `steps.<id>.outputs.<path>`.
    pub id: String,
    /// Matter code.
    pub matter: String,
    /// Steps whose approval this one waits for.
    #[serde(default)]
    pub after: Vec<String>,
    /// Matter input field (dotted path) → source: `form.<path>`, `lookups.<id>.<path>`,
    /// `steps.<id>.outputs.<path>` or `const:<text>`.
    pub input: BTreeMap<String, String>,
}

/// A cross-field rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// `equals` (the two sources are equal) or `birth-date-matches` (left is an identity number
    /// whose embedded birth date must equal the date in right, `YYYY-MM-DD`).
    pub check: RuleCheck,
    /// First source.
    pub left: String,
    /// Second source.
    pub right: String,
    /// The form field the applicant must correct.
    pub field: String,
    /// What to tell the applicant.
    pub message: String,
}

/// Kinds of cross-field rules.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RuleCheck {
    /// Both sides equal.
    Equals,
    /// The birth date inside an identity number equals a declared date.
    BirthDateMatches,
}

/// One matter (事项) of the catalogue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatterConfig {
    /// Name, e.g. `税务登记`.
    pub name: String,
    /// Department id that decides it.
    pub department: String,
    /// 事项类型 code (GB/T 39046): `01` 许可 … `20` 公共服务.
    pub matter_type: String,
    /// 服务对象 code: `1` 自然人, `2` 企业法人 ….
    pub service_object: String,
    /// Promised time limit (承诺时限), in working days.
    pub time_limit_days: u32,
    /// JSON Schema file of the matter's input; by default the adapter's own `describe` schema.
    pub schema: Option<PathBuf>,
    /// A filled form of the matter's single service, shown in the API document (checked
    /// against the schema when the catalogue is built).
    pub example: Option<toml::Value>,
    /// Its list of materials (材料清单), see [`super::materials`].
    #[serde(default)]
    pub materials: Vec<super::MaterialConfig>,
    /// How the time a returned step spends with the applicant (补正) counts: `resume` (default)
    /// or `restart`. 补正时间不计入承诺时限 either way.
    #[serde(default)]
    pub supplement_clock: SupplementClock,
}

/// What a supplement (补正) does to a step's promised time limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SupplementClock {
    /// The clock stops while the matter is with the applicant and goes on from where it
    /// stopped: the working days it spent returned are added to its limit.
    #[default]
    Resume,
    /// The limit counts again, whole, from the supplement's arrival (the day of arrival not
    /// counted, as for a receipt).
    Restart,
}

/// GB/T 39046 事项类型 codes.
const MATTER_TYPES: [&str; 11] = [
    "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "20",
];
/// GB/T 39046 服务对象 codes.
const SERVICE_OBJECTS: [&str; 6] = ["1", "2", "3", "4", "5", "6"];

/// Every matter names a configured department and real codes; every service is a graph of
/// matters whose inputs come from sources it can reach.
pub(super) fn check(
    catalogue: &Path,
    matters: &BTreeMap<String, MatterConfig>,
    services: &BTreeMap<String, ServiceConfig>,
    departments: &BTreeMap<String, super::DepartmentConfig>,
) -> Result<(), ConfigError> {
    for (code, matter) in matters {
        let key = |k: &str| format!("matters.\"{code}\".{k}");
        if !departments.contains_key(&matter.department) {
            return Err(ConfigError::new(
                catalogue,
                key("department"),
                format!("no department `{}` is configured", matter.department),
            ));
        }
        if !MATTER_TYPES.contains(&matter.matter_type.as_str()) {
            return Err(ConfigError::new(
                catalogue,
                key("matter_type"),
                "not a GB/T 39046 事项类型 code (01-10, 20)",
            ));
        }
        if !SERVICE_OBJECTS.contains(&matter.service_object.as_str()) {
            return Err(ConfigError::new(
                catalogue,
                key("service_object"),
                "not a GB/T 39046 服务对象 code (1-6)",
            ));
        }
        if matter.time_limit_days == 0 {
            return Err(ConfigError::new(
                catalogue,
                key("time_limit_days"),
                "must be at least 1 working day",
            ));
        }
    }
    for (code, service) in services {
        check_service(catalogue, code, service, matters)?;
    }
    Ok(())
}

fn check_service(
    file: &Path,
    code: &str,
    service: &ServiceConfig,
    matters: &BTreeMap<String, MatterConfig>,
) -> Result<(), ConfigError> {
    let key = |k: String| format!("services.\"{code}\".{k}");
    if matters.contains_key(code) {
        return Err(ConfigError::new(
            file,
            key("name".into()),
            "a service cannot share its code with a matter",
        ));
    }
    if service.steps.is_empty() {
        return Err(ConfigError::new(
            file,
            key("steps".into()),
            "a service needs at least one step",
        ));
    }
    let lookup_ids: Vec<&str> = service.lookups.iter().map(|l| l.id.as_str()).collect();
    let mut seen: Vec<&str> = Vec::new();
    for (i, step) in service.steps.iter().enumerate() {
        let at = |k: &str| key(format!("steps[{i}].{k}"));
        if seen.contains(&step.id.as_str()) || lookup_ids.contains(&step.id.as_str()) {
            return Err(ConfigError::new(
                file,
                at("id"),
                format!("step id `{}` is used twice", step.id),
            ));
        }
        if !matters.contains_key(&step.matter) {
            return Err(ConfigError::new(
                file,
                at("matter"),
                format!("no matter `{}` in the catalogue", step.matter),
            ));
        }
        // Steps may only wait for steps defined before them: the graph is acyclic by construction.
        for dep in &step.after {
            if !seen.contains(&dep.as_str()) {
                return Err(ConfigError::new(
                    file,
                    at("after"),
                    format!("`{dep}` is not a step defined before this one"),
                ));
            }
        }
        for (field, source) in &step.input {
            let source = Source::parse(source)
                .map_err(|why| ConfigError::new(file, at(&format!("input.{field}")), why))?;
            match &source {
                Source::Step(dep, _) if !step.after.contains(dep) => {
                    return Err(ConfigError::new(
                        file,
                        at(&format!("input.{field}")),
                        format!("uses step `{dep}`, which is not in `after`"),
                    ));
                }
                Source::Lookup(id, _) if !lookup_ids.contains(&id.as_str()) => {
                    return Err(ConfigError::new(
                        file,
                        at(&format!("input.{field}")),
                        format!("no lookup `{id}` in this service"),
                    ));
                }
                _ => {}
            }
        }
        seen.push(&step.id);
    }
    for (i, lookup) in service.lookups.iter().enumerate() {
        for (field, source) in &lookup.query {
            match Source::parse(source) {
                Ok(Source::Form(_) | Source::Const(_)) => {}
                Ok(_) => {
                    return Err(ConfigError::new(
                        file,
                        key(format!("lookups[{i}].query.{field}")),
                        "a lookup query takes form fields or constants",
                    ));
                }
                Err(why) => {
                    return Err(ConfigError::new(
                        file,
                        key(format!("lookups[{i}].query.{field}")),
                        why,
                    ));
                }
            }
        }
    }
    for (i, rule) in service.rules.iter().enumerate() {
        for (side, source) in [("left", &rule.left), ("right", &rule.right)] {
            match Source::parse(source) {
                Ok(Source::Step(..)) => {
                    return Err(ConfigError::new(
                        file,
                        key(format!("rules[{i}].{side}")),
                        "rules are checked before any step runs",
                    ));
                }
                Ok(Source::Lookup(id, _)) if !lookup_ids.contains(&id.as_str()) => {
                    return Err(ConfigError::new(
                        file,
                        key(format!("rules[{i}].{side}")),
                        format!("no lookup `{id}` in this service"),
                    ));
                }
                Ok(_) => {}
                Err(why) => {
                    return Err(ConfigError::new(
                        file,
                        key(format!("rules[{i}].{side}")),
                        why,
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Where a value of a matter input, a lookup query or a rule comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A field of the applicant's form (dotted path).
    Form(Vec<String>),
    /// A field of a service lookup's answer: lookup id, path.
    Lookup(String, Vec<String>),
    /// An output of an earlier step: step id, path.
    Step(String, Vec<String>),
    /// A fixed text.
    Const(String),
}

impl Source {
    /// Parse `form.a.b`, `lookups.id.a`, `steps.id.outputs.a` or `const:text`.
    pub fn parse(text: &str) -> Result<Source, String> {
        if let Some(value) = text.strip_prefix("const:") {
            return Ok(Source::Const(value.to_string()));
        }
        let parts: Vec<String> = text.split('.').map(str::to_string).collect();
        let bad = || {
            format!(
                "`{text}` is not form.<field>, lookups.<id>.<field>, steps.<id>.outputs.<field> or const:<text>"
            )
        };
        if parts.iter().any(String::is_empty) {
            return Err(bad());
        }
        match parts.as_slice() {
            [head, path @ ..] if head == "form" && !path.is_empty() => {
                Ok(Source::Form(path.to_vec()))
            }
            [head, id, path @ ..] if head == "lookups" && !path.is_empty() => {
                Ok(Source::Lookup(id.clone(), path.to_vec()))
            }
            [head, id, outputs, path @ ..]
                if head == "steps" && outputs == "outputs" && !path.is_empty() =>
            {
                Ok(Source::Step(id.clone(), path.to_vec()))
            }
            _ => Err(bad()),
        }
    }
}
