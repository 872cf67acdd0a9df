//! The materials of the call in progress: what an adapter may read (`materials.read`) and
//! stream into a department request (`material` body parts), and where their bytes come from.
//!
//! A call carries its materials (`submission.materials`, `supplement.materials`); only the
//! files among them have bytes, and only those may be read or streamed — any other code is
//! `unknown`, whatever the store holds. Bytes are read from the node's store by digest, in
//! slices: a read is at most [`READ_MAX`], so a large material never sits whole in the host
//! or in the adapter.

use super::bindings::v0_2::gov::adapter::materials;
use super::bindings::v0_2::gov::adapter::types::{Material, MaterialSource};
use super::imports::HostState;
use crate::blobs::MaterialBlobs;
use std::collections::HashMap;
use std::sync::Arc;

/// The most `materials.read` answers at once (the contract's bound).
pub const READ_MAX: u32 = 1 << 20;

/// A file of the call: its digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallFile {
    pub(crate) sm3: String,
    pub(crate) size: u64,
}

/// The materials the call in progress carries, by code.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallMaterials {
    /// Every material code of the call, with its file when it is one.
    codes: HashMap<String, Option<CallFile>>,
}

impl CallMaterials {
    /// The materials handed to the adapter with this call.
    pub(crate) fn of(materials: &[Material]) -> Self {
        CallMaterials {
            codes: materials
                .iter()
                .map(|m| {
                    let file = match &m.source {
                        MaterialSource::File(f) => Some(CallFile {
                            sm3: f.sm3.clone(),
                            size: f.size,
                        }),
                        MaterialSource::Licence(_) | MaterialSource::Promised(_) => None,
                    };
                    (m.code.clone(), file)
                })
                .collect(),
        }
    }

    /// The file of material `code`, or why the adapter may not read it.
    pub(crate) fn file(&self, code: &str) -> Result<&CallFile, String> {
        match self.codes.get(code) {
            Some(Some(file)) => Ok(file),
            Some(None) => Err(format!(
                "material `{code}` of this call is not a file (a licence, or not provided yet)"
            )),
            None => Err(format!("no material `{code}` in this call")),
        }
    }
}

impl From<gateway_base::model::MaterialRef> for Material {
    fn from(m: gateway_base::model::MaterialRef) -> Self {
        use super::bindings::v0_2::gov::adapter::types::{FileInfo, LicenceRef};
        use gateway_base::model::MaterialSource as Source;
        Material {
            code: m.code,
            name: m.name,
            source: match m.source {
                Source::File {
                    media_type,
                    size,
                    sm3,
                } => MaterialSource::File(FileInfo {
                    media_type,
                    size,
                    sm3,
                }),
                Source::Licence { id, kind, number } => {
                    MaterialSource::Licence(LicenceRef { id, kind, number })
                }
                Source::Promised { due } => MaterialSource::Promised(due),
            },
        }
    }
}

impl materials::Host for HostState {
    async fn read(
        &mut self,
        code: String,
        offset: u64,
        max: u32,
    ) -> Result<Vec<u8>, materials::ReadError> {
        let _host = self.meter.host_call();
        let file = self
            .materials
            .file(&code)
            .map_err(materials::ReadError::Unknown)?
            .clone();
        if offset >= file.size || max == 0 {
            return Ok(Vec::new());
        }
        let max = max.min(READ_MAX) as usize;
        let Some(blobs) = self.blobs.clone() else {
            return Err(self.material_failed(format!(
                "material `{code}`: this gateway has no material store"
            )));
        };
        let expected = (file.size - offset).min(max as u64) as usize;
        match blobs.read(&file.sm3, offset, max).await {
            Ok(Some(bytes)) if bytes.len() == expected => Ok(bytes),
            Ok(Some(bytes)) => Err(self.material_failed(format!(
                "material `{code}`: the store gave {} bytes at {offset}, its size says {expected}",
                bytes.len()
            ))),
            Ok(None) => {
                Err(self
                    .material_failed(format!("material `{code}`: its file is not in the store")))
            }
            Err(e) => Err(self.material_failed(format!("material `{code}`: {e}"))),
        }
    }
}

impl HostState {
    /// The host could not read a material of the call: the guest is told it is unavailable,
    /// and the call is the gateway's fault whatever the adapter makes of it.
    fn material_failed(&mut self, why: String) -> materials::ReadError {
        tracing::warn!(department = %self.department.id, error = %why, "material could not be read");
        self.material_failure.get_or_insert(why.clone());
        materials::ReadError::Unavailable(why)
    }
}

/// The node's source of material bytes, attached once the store is open (see
/// [`super::PluginEngine::attach_materials`]).
pub(crate) type SharedBlobs = Arc<std::sync::OnceLock<Arc<dyn MaterialBlobs>>>;
