//! Pre-review (一次性告知): every problem with an application, gathered at once — the form's
//! schema and identifier checks, the service's lookups (a record that does not exist), its
//! cross-field rules, and every involved department's own `validate`, all asked in parallel.

use crate::catalogue::{Catalogue, Service, merge_problems};
use crate::one_thing::{Sources, check_rules, problem_on_form};
use crate::{CaseError, Orchestrator};
use gateway_base::config::Source;
use gateway_base::model::FieldProblem;
use gateway_plugins::host::CallError;
use gateway_plugins::host::contract::AdapterError;
use serde_json::{Value, json};

/// The outcome of a pre-review.
#[derive(Debug)]
pub struct Review {
    /// Every problem found, deduplicated.
    pub problems: Vec<FieldProblem>,
    /// Lookup answers by lookup id.
    pub lookups: Value,
    /// The materials: what was obtained, what may come later, what the case stores.
    pub materials: crate::materials::MaterialsOutcome,
}

struct LookupResults {
    answers: Value,
    problems: Vec<FieldProblem>,
}

impl Orchestrator {
    /// Every problem with an application for a service, gathered at once (一次性告知): the
    /// form's schema and identifier checks, the service's lookups (a certificate that does not
    /// exist), its cross-field rules, and every involved department's own `validate`, all
    /// departments asked in parallel. Also returns the lookup answers, which fill matter inputs.
    /// No draft is named: the service's materials count as not provided.
    pub async fn review(&self, service_code: &str, form: &Value) -> Result<Review, CaseError> {
        self.review_in(&self.catalogue(), service_code, form, None)
            .await
    }

    /// `provided`: the materials of the draft the application names.
    pub(crate) async fn review_in(
        &self,
        catalogue: &Catalogue,
        service_code: &str,
        form: &Value,
        provided: Option<&[gateway_store::materials::DraftMaterial]>,
    ) -> Result<Review, CaseError> {
        let service = catalogue
            .services
            .get(service_code)
            .ok_or_else(|| CaseError::NotFound {
                what: "service",
                id: service_code.into(),
            })?;
        if !form.is_object() {
            let problem = FieldProblem::new("", "type", "申请表应为JSON对象");
            return Ok(Review {
                problems: vec![problem],
                lookups: json!({}),
                materials: Default::default(),
            });
        }
        let form_problems = catalogue.check_form(service, form);
        let lookups = self.run_lookups(service, form, &form_problems).await?;
        let sources = Sources {
            form: Some(form),
            lookups: Some(&lookups.answers),
            outputs: Default::default(),
        };
        let rule_problems = check_rules(&service.rules, &sources);
        // The departments check what the schema let through: a value the schema already refused
        // (text where a number belongs) is left out of what they are given, so an adapter reads
        // the rest and reports on it, not on a payload it cannot parse.
        let checked = without_fields(form, &form_problems);
        let sources = Sources {
            form: Some(&checked),
            ..sources
        };
        let checked = &checked;
        let checks = service.steps.iter().map(|step| {
            let sources = &sources;
            async move {
                let matter = &catalogue.matters[&step.matter];
                let input = step
                    .input
                    .as_ref()
                    .map_or_else(|| checked.clone(), |m| sources.build_input(m));
                let adapter = self.adapters.get(&matter.department).ok_or_else(|| {
                    CaseError::Unavailable {
                        department: matter.department.clone(),
                        message: "no adapter loaded".into(),
                    }
                })?;
                let found = adapter
                    .validate(&matter.code, &input.to_string())
                    .await
                    .map_err(|e| CaseError::from_call(&matter.department, e))?;
                // Problems are reported on the form field that feeds them; fields an earlier
                // step will fill are not the applicant's to fix.
                let problems = found
                    .into_iter()
                    .filter_map(|f| {
                        let field = match &step.input {
                            None => Some(f.field.clone()),
                            Some(mapping) => problem_on_form(&step.id, mapping, &f.field),
                        };
                        field.map(|field| {
                            FieldProblem::new(
                                field,
                                f.code,
                                gateway_base::redact::redact(&f.message),
                            )
                        })
                    })
                    .collect::<Vec<_>>();
                Ok::<_, CaseError>(problems)
            }
        });
        let department_problems = futures::future::try_join_all(checks).await?;
        let materials = self
            .review_materials(catalogue, service, form, &lookups.answers, provided)
            .await?;
        let lists = [form_problems, lookups.problems, rule_problems]
            .into_iter()
            .chain(department_problems)
            .chain([materials.problems.clone()]);
        Ok(Review {
            problems: merge_problems(lists),
            lookups: lookups.answers,
            materials,
        })
    }

    /// Run a service's lookups in parallel. A lookup whose query fields already have problems is
    /// skipped; a record the department does not hold is a problem on the field that named it.
    async fn run_lookups(
        &self,
        service: &Service,
        form: &Value,
        known: &[FieldProblem],
    ) -> Result<LookupResults, CaseError> {
        let sources = Sources {
            form: Some(form),
            ..Default::default()
        };
        let runs = service.lookups.iter().map(|lookup| {
            let sources = &sources;
            async move {
                let form_fields: Vec<String> = lookup
                    .query
                    .iter()
                    .filter_map(|(_, s)| {
                        if let Source::Form(p) = s {
                            Some(p.join("."))
                        } else {
                            None
                        }
                    })
                    .collect();
                let blamed = form_fields.first().cloned().unwrap_or_default();
                let ready = lookup
                    .query
                    .iter()
                    .all(|(_, s)| sources.resolve(s).is_some())
                    && !known.iter().any(|p| {
                        form_fields
                            .iter()
                            .any(|f| p.field == *f || p.field.starts_with(&format!("{f}.")))
                    });
                if !ready {
                    return Ok((lookup.id.clone(), None, None));
                }
                let adapter = self.adapters.for_lookup(&lookup.lookup).ok_or_else(|| {
                    CaseError::NotFound {
                        what: "lookup",
                        id: lookup.lookup.clone(),
                    }
                })?;
                let department = adapter.department().id.clone();
                match adapter
                    .lookup(
                        &lookup.lookup,
                        &sources.build_input(&lookup.query).to_string(),
                    )
                    .await
                {
                    Ok(answer) => {
                        let value: Value = serde_json::from_str(&answer).map_err(|e| {
                            CaseError::AdapterFailed {
                                department,
                                message: format!("lookup answer is not JSON: {e}"),
                            }
                        })?;
                        Ok((lookup.id.clone(), Some(value), None))
                    }
                    Err(CallError::Adapter(AdapterError::Rejected(r))) => {
                        let code = if r.code == "not_found" {
                            "not_found"
                        } else {
                            "rejected"
                        };
                        let message = format!(
                            "{department} 未查询到相符的登记信息：{}",
                            gateway_base::redact::redact(&r.message)
                        );
                        Ok((
                            lookup.id.clone(),
                            None,
                            Some(FieldProblem::new(blamed, code, message)),
                        ))
                    }
                    Err(CallError::Adapter(AdapterError::InvalidInput(fields))) => {
                        let message = fields
                            .iter()
                            .map(|f| gateway_base::redact::redact(&f.message))
                            .collect::<Vec<_>>()
                            .join("; ");
                        Ok((
                            lookup.id.clone(),
                            None,
                            Some(FieldProblem::new(blamed, "format", message)),
                        ))
                    }
                    Err(e) => Err(CaseError::from_call(&department, e)),
                }
            }
        });
        let mut results = LookupResults {
            answers: json!({}),
            problems: Vec::new(),
        };
        for (id, answer, problem) in futures::future::try_join_all(runs).await? {
            if let Some(answer) = answer {
                results.answers[id.as_str()] = answer;
            }
            results.problems.extend(problem);
        }
        Ok(results)
    }
}

/// The form without the fields that have problems (a field's path is dotted; a number in it
/// indexes a list).
fn without_fields(form: &Value, problems: &[FieldProblem]) -> Value {
    let mut form = form.clone();
    for problem in problems.iter().filter(|p| !p.field.is_empty()) {
        let path: Vec<&str> = problem.field.split('.').collect();
        let Some((last, parents)) = path.split_last() else {
            continue;
        };
        let mut node = Some(&mut form);
        for segment in parents {
            node = node.and_then(|node| match node {
                Value::Object(map) => map.get_mut(*segment),
                Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
                _ => None,
            });
        }
        if let Some(Value::Object(map)) = node {
            map.remove(*last);
        }
    }
    form
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_problems_are_left_out_of_what_departments_check() {
        let form = json!({
            "registered_capital": "lots",
            "legal_representative": {"name": "李四", "id_number": 7},
            "owners": [{"share": "half"}, {"share": 1}],
            "kept": true,
            "deeper": 1
        });
        let problems = [
            FieldProblem::new("registered_capital", "type", "应为数字"),
            FieldProblem::new("legal_representative.id_number", "type", "应为文本"),
            FieldProblem::new("owners.0.share", "type", "应为数字"),
            FieldProblem::new("missing.deeper", "required", "必填项缺失"),
            FieldProblem::new("", "type", "申请表应为JSON对象"),
        ];
        assert_eq!(
            without_fields(&form, &problems),
            json!({
                "legal_representative": {"name": "李四"},
                "owners": [{}, {"share": 1}],
                "kept": true,
                "deeper": 1
            })
        );
    }
}
