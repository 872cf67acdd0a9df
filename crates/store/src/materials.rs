//! Application materials as stored: files kept once by their SM3 digest, in chunks sealed at
//! rest; drafts (applications in preparation) and their uploads; each case's materials.
//!
//! # Writing a file
//! [`Store::blob_writer`] opens an upload; [`BlobWriter::write`] takes the bytes as they arrive
//! and stores them chunk by chunk (memory: one chunk, whatever the file's size), computing the
//! SM3 as they pass. Until [`BlobWriter::finish`] the chunks belong to the upload only
//! (`material_upload_chunks`), never to a file anyone names. `finish` makes them the file
//! `material_blobs(sm3)` — or drops them when that file is stored already (the same bytes are
//! stored once) — and attaches it to a draft or a case, all in one transaction: a file is
//! referenced only once it is whole. An upload that is not finished (the body was cut off, the
//! caller refused it) is removed when the writer is dropped, and by the sweep
//! ([`Store::remove_stale_uploads`]) if the node died first.
//!
//! # Reading a file
//! [`Store::read_blob`] reads a range of a stored file by its digest, opening only the chunks
//! the range touches: what the plugin host's `materials.read` serves adapters from, so a large
//! file never sits whole in memory. On PostgreSQL every node reads what another stored.
//!
//! # At rest
//! With `[store.encryption]`, each chunk is sealed (`enc1:…`) with associated data
//! `material:<sm3>:<n>` (an upload's chunks with `material-upload:<upload id>:<n>`, sealed
//! again under the file's digest when the upload completes), so a chunk copied to another file
//! or position does not open; without it, chunks are base64.
//!
//! # Retention
//! A draft expires a set time after its last change ([`Store::remove_expired_drafts`]); a
//! case's materials are kept as long as the case. A file no draft and no case refers to is
//! removed with [`Store::remove_unreferenced_blobs`].

use crate::at_rest::PayloadCipher;
use crate::{Result, Store, StoreError};
use gateway_base::model::{MaterialRef, MaterialSource};
use gateway_base::time::now_ms;
use sm3::Digest as _;
use sqlx::Row;

/// A stored file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// SM3 of its bytes, 64 lowercase hex digits.
    pub sm3: String,
    /// Its media type, decided from its content (`application/pdf` …).
    pub media_type: String,
    /// Bytes.
    pub size: u64,
    /// The chunk size it was written with.
    pub chunk_size: u64,
    /// Unix milliseconds it was first stored.
    pub created_at: i64,
}

/// An application in preparation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// Draft id.
    pub id: String,
    /// The portal client that opened it: the only one that may see or use it.
    pub client: String,
    /// The service it is for.
    pub service: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds of its last change; it expires a set time after this.
    pub updated_at: i64,
}

/// A material uploaded to a draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftMaterial {
    /// The material's code.
    pub code: String,
    /// The file.
    pub blob: BlobInfo,
    /// Unix milliseconds.
    pub uploaded_at: i64,
}

/// A material to store with a new case ([`crate::Arrival::materials`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCaseMaterial {
    /// The material's code.
    pub code: String,
    /// Its name.
    pub name: String,
    /// Where it comes from.
    pub source: NewMaterialSource,
}

/// Where a material of a new case comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewMaterialSource {
    /// A stored file (uploaded to the draft).
    File {
        /// Its digest.
        sm3: String,
    },
    /// A licence the library holds now.
    Licence {
        /// Its GB/T 36904 identifier.
        id: String,
        /// Its kind.
        kind: String,
    },
    /// The licence of this kind a step of the same case will issue (the step this one waits
    /// for): resolved from the case's licences once it is issued.
    IssuedByStep {
        /// The licence kind.
        kind: String,
    },
    /// To be provided later (容缺受理).
    Promised {
        /// By when, once set (`YYYY-MM-DD`).
        due: Option<String>,
    },
}

/// Where a finished upload goes.
#[derive(Debug, Clone, Copy)]
pub enum Attach<'a> {
    /// A material of a draft: refused when the draft already has one of this code.
    Draft {
        /// Draft id.
        draft_id: &'a str,
        /// Material code.
        code: &'a str,
    },
    /// A material of a stored case (a supplement, or one promised under 容缺受理): refused when
    /// the case has this material already, unless it was only promised.
    Case {
        /// Case id.
        case_id: &'a str,
        /// Material code.
        code: &'a str,
        /// Its name, recorded with it.
        name: &'a str,
        /// Replace the case's file of this code (a department returned the case asking for it
        /// anew, 补正).
        replace: bool,
    },
}

/// What became of a finished upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attached {
    /// Stored (or found stored already) and attached.
    Stored(BlobInfo),
    /// The draft or case has this material already: nothing was changed.
    Taken,
    /// The draft is gone (expired, consumed by an application): nothing was kept.
    Gone,
}

/// Associated data of chunk `n` of the file `sm3`.
fn chunk_place(sm3: &str, n: i64) -> String {
    format!("material:{sm3}:{n}")
}

/// Associated data of chunk `n` of an upload in progress.
fn upload_place(upload: &str, n: i64) -> String {
    format!("material-upload:{upload}:{n}")
}

const BLOB_COLUMNS: &str = "sm3, media_type, size, chunk_size, created_at";

fn blob_from_row(r: &sqlx::any::AnyRow) -> BlobInfo {
    BlobInfo {
        sm3: r.get("sm3"),
        media_type: r.get("media_type"),
        size: r.get::<i64, _>("size") as u64,
        chunk_size: r.get::<i64, _>("chunk_size") as u64,
        created_at: r.get("created_at"),
    }
}

fn draft_from_row(r: &sqlx::any::AnyRow) -> Draft {
    Draft {
        id: r.get("id"),
        client: r.get("client"),
        service: r.get("service"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

impl Store {
    fn cipher(&self) -> Option<&PayloadCipher> {
        self.cipher.as_deref()
    }

    fn open_chunk(&self, place: &str, stored: &str) -> Result<Vec<u8>> {
        PayloadCipher::open_bytes(self.cipher(), place, stored).map_err(|error| {
            StoreError::Sealed {
                place: place.to_string(),
                error,
            }
        })
    }

    /// Open a draft for `client`'s application to `service`.
    pub async fn create_draft(&self, id: &str, client: &str, service: &str) -> Result<Draft> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO drafts (id, client, service, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(client)
        .bind(service)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(Draft {
            id: id.into(),
            client: client.into(),
            service: service.into(),
            created_at: now,
            updated_at: now,
        })
    }

    /// A draft, if it exists (whoever owns it, however old: the caller judges both).
    pub async fn draft(&self, id: &str) -> Result<Option<Draft>> {
        let row = sqlx::query(
            "SELECT id, client, service, created_at, updated_at FROM drafts WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(draft_from_row))
    }

    /// The materials of a draft, by code.
    pub async fn draft_materials(&self, draft_id: &str) -> Result<Vec<DraftMaterial>> {
        let rows = sqlx::query(
            "SELECT d.code, d.uploaded_at, b.sm3, b.media_type, b.size, b.chunk_size, b.created_at
             FROM draft_materials d JOIN material_blobs b ON b.sm3 = d.sm3
             WHERE d.draft_id = $1 ORDER BY d.code",
        )
        .bind(draft_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| DraftMaterial {
                code: r.get("code"),
                uploaded_at: r.get("uploaded_at"),
                blob: blob_from_row(r),
            })
            .collect())
    }

    /// Remove one material from a draft (its file stays while anything else refers to it);
    /// false when the draft had none of this code.
    pub async fn remove_draft_material(&self, draft_id: &str, code: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let removed = sqlx::query("DELETE FROM draft_materials WHERE draft_id = $1 AND code = $2")
            .bind(draft_id)
            .bind(code)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("UPDATE drafts SET updated_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(draft_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(removed > 0)
    }

    /// A stored file's description, by its SM3 (64 lowercase hex digits).
    pub async fn blob(&self, sm3: &str) -> Result<Option<BlobInfo>> {
        let row = sqlx::query(&format!(
            "SELECT {BLOB_COLUMNS} FROM material_blobs WHERE sm3 = $1"
        ))
        .bind(sm3)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(blob_from_row))
    }

    /// Bytes `offset .. offset + max` of the stored file `sm3` (fewer at its end; none from
    /// its end on); `None` when no file has this digest.
    ///
    /// Only the chunks the range touches are read and opened, so memory is `max` plus one
    /// chunk whatever the file's size; a range aligned to the file's `chunk_size`
    /// ([`Store::blob`]) opens the fewest. Each chunk is checked as it is opened when sealed
    /// (its tag, bound to this file and position); a missing chunk or one that does not open
    /// is an error, never bytes made up. Whole-file integrity is the SM3 the caller holds.
    pub async fn read_blob(&self, sm3: &str, offset: u64, max: usize) -> Result<Option<Vec<u8>>> {
        let Some(blob) = self.blob(sm3).await? else {
            return Ok(None);
        };
        if offset >= blob.size || max == 0 {
            return Ok(Some(Vec::new()));
        }
        let end = blob.size.min(offset.saturating_add(max as u64));
        let chunk = blob.chunk_size.max(1);
        let (first, last) = ((offset / chunk) as i64, ((end - 1) / chunk) as i64);
        let rows = sqlx::query(
            "SELECT n, data FROM material_chunks WHERE sm3 = $1 AND n >= $2 AND n <= $3 ORDER BY n",
        )
        .bind(sm3)
        .bind(first)
        .bind(last)
        .fetch_all(&self.pool)
        .await?;
        if rows.len() as i64 != last - first + 1 {
            return Err(StoreError::Corrupt(format!(
                "material {sm3}: chunks {first}..={last} are not all stored"
            )));
        }
        let mut out = Vec::with_capacity((end - offset) as usize);
        for (i, row) in rows.iter().enumerate() {
            let n: i64 = row.get("n");
            if n != first + i as i64 {
                return Err(StoreError::Corrupt(format!(
                    "material {sm3}: chunk {n} out of place"
                )));
            }
            let bytes = self.open_chunk(&chunk_place(sm3, n), &row.get::<String, _>("data"))?;
            let start = n as u64 * chunk;
            let from = offset.saturating_sub(start) as usize;
            let to = ((end - start) as usize).min(bytes.len());
            if from > to {
                return Err(StoreError::Corrupt(format!(
                    "material {sm3}: chunk {n} is shorter than its file says"
                )));
            }
            out.extend_from_slice(&bytes[from..to]);
        }
        if out.len() as u64 != end - offset {
            return Err(StoreError::Corrupt(format!(
                "material {sm3}: fewer bytes stored than its size"
            )));
        }
        Ok(Some(out))
    }

    /// Start storing a file that arrives in pieces, in chunks of `chunk_size` bytes.
    pub async fn blob_writer(&self, chunk_size: usize) -> Result<BlobWriter> {
        let id = uuid::Uuid::now_v7().to_string();
        sqlx::query("INSERT INTO material_uploads (id, started_at) VALUES ($1, $2)")
            .bind(&id)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(BlobWriter {
            store: self.clone(),
            id,
            chunk_size: chunk_size.max(1),
            buffer: Vec::with_capacity(chunk_size.max(1)),
            chunks: 0,
            size: 0,
            digest: sm3::Sm3::new(),
            done: false,
        })
    }

    /// The materials of a case, by code, as adapters are handed them. A licence a step of the
    /// case is still to issue is left out until it is issued; a promised material is
    /// `promised`. Filter by the codes of a step's matter (the catalogue's list) to hand a
    /// step its own.
    pub async fn case_materials(&self, case_id: &str) -> Result<Vec<MaterialRef>> {
        let rows = sqlx::query(
            "SELECT m.code, m.name, m.source, m.sm3, m.licence_id, m.licence_kind, m.due,
                    b.media_type, b.size
             FROM case_materials m LEFT JOIN material_blobs b ON b.sm3 = m.sm3
             WHERE m.case_id = $1 ORDER BY m.code",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        let mut issued: Option<Vec<crate::licences::Licence>> = None;
        let mut out = Vec::new();
        for r in &rows {
            let code: String = r.get("code");
            let source: String = r.get("source");
            let corrupt = |what: &str| {
                StoreError::Corrupt(format!("case_materials of {case_id}, {code}: {what}"))
            };
            let source = match source.as_str() {
                "file" => MaterialSource::File {
                    sm3: r
                        .get::<Option<String>, _>("sm3")
                        .ok_or_else(|| corrupt("a file without its digest"))?,
                    media_type: r
                        .get::<Option<String>, _>("media_type")
                        .ok_or_else(|| corrupt("its file is not stored"))?,
                    size: r.get::<Option<i64>, _>("size").unwrap_or_default() as u64,
                },
                "licence" => {
                    let licence = match r.get::<Option<String>, _>("licence_id") {
                        Some(id) => self.licence(&id).await?,
                        None => {
                            let kind: Option<String> = r.get("licence_kind");
                            if issued.is_none() {
                                issued = Some(self.licences_of_case(case_id).await?);
                            }
                            issued
                                .iter()
                                .flatten()
                                .find(|l| Some(&l.kind) == kind.as_ref())
                                .cloned()
                        }
                    };
                    let Some(l) = licence else { continue };
                    MaterialSource::Licence {
                        id: l.id,
                        kind: l.kind,
                        number: l.number,
                    }
                }
                "promised" => MaterialSource::Promised { due: r.get("due") },
                other => return Err(corrupt(&format!("unknown source `{other}`"))),
            };
            out.push(MaterialRef {
                name: r.get("name"),
                code,
                source,
            });
        }
        Ok(out)
    }

    /// Remove drafts last changed before `updated_before` (Unix ms) with their materials'
    /// references; the number removed. Their files go with [`Store::remove_unreferenced_blobs`].
    pub async fn remove_expired_drafts(&self, updated_before: i64) -> Result<u64> {
        // Children first: SQLite applies ON DELETE CASCADE only with foreign keys on, which
        // every connection of this store has, but a shared database may not.
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "DELETE FROM draft_materials WHERE draft_id IN (SELECT id FROM drafts WHERE updated_at < $1)",
        )
        .bind(updated_before)
        .execute(&mut *tx)
        .await?;
        let removed = sqlx::query("DELETE FROM drafts WHERE updated_at < $1")
            .bind(updated_before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(removed)
    }

    /// Remove uploads started before `started_before` (Unix ms) that never finished (their
    /// node died mid-upload); the number removed.
    pub async fn remove_stale_uploads(&self, started_before: i64) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "DELETE FROM material_upload_chunks WHERE upload_id IN (SELECT id FROM material_uploads WHERE started_at < $1)",
        )
        .bind(started_before)
        .execute(&mut *tx)
        .await?;
        let removed = sqlx::query("DELETE FROM material_uploads WHERE started_at < $1")
            .bind(started_before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(removed)
    }

    /// Remove the files no draft and no case refers to, with their chunks; the number removed.
    /// One file at a time, each checked again as it is removed: a file an upload is attaching
    /// right now is kept (the foreign keys refuse its removal, and it is tried next time).
    pub async fn remove_unreferenced_blobs(&self) -> Result<u64> {
        const UNREFERENCED: &str =
            "NOT EXISTS (SELECT 1 FROM draft_materials d WHERE d.sm3 = material_blobs.sm3)
             AND NOT EXISTS (SELECT 1 FROM case_materials c WHERE c.sm3 = material_blobs.sm3)";
        let candidates: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT sm3 FROM material_blobs WHERE {UNREFERENCED}"
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut removed = 0;
        for sm3 in candidates {
            let attempt = async {
                let mut tx = self.begin_write().await?;
                let gone = sqlx::query(&format!(
                    "DELETE FROM material_blobs WHERE sm3 = $1 AND {UNREFERENCED}"
                ))
                .bind(&sm3)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if gone > 0 {
                    sqlx::query("DELETE FROM material_chunks WHERE sm3 = $1")
                        .bind(&sm3)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok::<_, StoreError>(gone)
            };
            match attempt.await {
                Ok(gone) => removed += gone,
                Err(e) => {
                    tracing::debug!(%sm3, error = %e, "an unreferenced material is kept for now")
                }
            }
        }
        Ok(removed)
    }
}

/// A file being stored as it arrives: see the module doc. Dropped unfinished, it removes what
/// it stored (in the background, on the runtime it runs on).
pub struct BlobWriter {
    store: Store,
    id: String,
    chunk_size: usize,
    buffer: Vec<u8>,
    chunks: i64,
    size: u64,
    digest: sm3::Sm3,
    done: bool,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("upload", &self.id)
            .field("size", &self.size)
            .finish()
    }
}

impl BlobWriter {
    /// Bytes taken so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Take the next bytes of the file: each full chunk is stored as it fills.
    pub async fn write(&mut self, mut bytes: &[u8]) -> Result<()> {
        self.digest.update(bytes);
        self.size += bytes.len() as u64;
        while !bytes.is_empty() {
            let room = self.chunk_size - self.buffer.len();
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.buffer.extend_from_slice(now);
            bytes = rest;
            if self.buffer.len() == self.chunk_size {
                self.flush().await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let n = self.chunks;
        let data = PayloadCipher::store_bytes(
            self.store.cipher(),
            &upload_place(&self.id, n),
            &self.buffer,
        );
        sqlx::query("INSERT INTO material_upload_chunks (upload_id, n, data) VALUES ($1, $2, $3)")
            .bind(&self.id)
            .bind(n)
            .bind(data)
            .execute(&self.store.pool)
            .await?;
        self.buffer.clear();
        self.chunks += 1;
        Ok(())
    }

    /// The file is whole: store it under its SM3 as `media_type` (unless it is stored
    /// already) and attach it, in one transaction; nothing is attached when the target has
    /// the material already ([`Attached::Taken`]) or is gone ([`Attached::Gone`]), and then
    /// nothing of this upload is kept.
    pub async fn finish(mut self, media_type: &str, attach: Attach<'_>) -> Result<Attached> {
        self.flush().await?;
        let sm3 = sdk::sign::to_hex(std::mem::take(&mut self.digest).finalize());
        // A file another upload is attaching, or the sweep removing, at this very moment can
        // make one attempt fail on a foreign key; the next sees the outcome.
        let mut attempt = 0;
        let attached = loop {
            attempt += 1;
            match self.attach(&sm3, media_type, attach).await {
                Ok(attached) => break attached,
                Err(StoreError::Database(e)) if attempt < 3 => {
                    tracing::debug!(error = %e, attempt, "attaching a material again");
                }
                Err(e) => return Err(e),
            }
        };
        if attached != Attached::Taken && attached != Attached::Gone {
            self.done = true;
        } else {
            self.discard().await?;
        }
        Ok(attached)
    }

    async fn attach(&self, sm3: &str, media_type: &str, attach: Attach<'_>) -> Result<Attached> {
        let now = now_ms();
        let store = &self.store;
        let mut tx = store.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO material_blobs (sm3, media_type, size, chunk_size, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(sm3)
        .bind(media_type)
        .bind(self.size as i64)
        .bind(self.chunk_size as i64)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            match store.cipher() {
                // Plain chunks are the same text under any name: moved in one statement.
                None => {
                    sqlx::query(
                        "INSERT INTO material_chunks (sm3, n, data)
                         SELECT $1, n, data FROM material_upload_chunks WHERE upload_id = $2",
                    )
                    .bind(sm3)
                    .bind(&self.id)
                    .execute(&mut *tx)
                    .await?;
                }
                // Sealed chunks are bound to their place: each is opened and sealed again
                // under the file's digest, one at a time.
                Some(cipher) => {
                    for n in 0..self.chunks {
                        let stored: String = sqlx::query_scalar(
                            "SELECT data FROM material_upload_chunks WHERE upload_id = $1 AND n = $2",
                        )
                        .bind(&self.id)
                        .bind(n)
                        .fetch_one(&mut *tx)
                        .await?;
                        let plain = store.open_chunk(&upload_place(&self.id, n), &stored)?;
                        sqlx::query(
                            "INSERT INTO material_chunks (sm3, n, data) VALUES ($1, $2, $3)",
                        )
                        .bind(sm3)
                        .bind(n)
                        .bind(cipher.seal_bytes(&chunk_place(sm3, n), &plain))
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
        }
        let blob = sqlx::query(&format!(
            "SELECT {BLOB_COLUMNS} FROM material_blobs WHERE sm3 = $1"
        ))
        .bind(sm3)
        .fetch_one(&mut *tx)
        .await?;
        let blob = blob_from_row(&blob);
        match attach {
            Attach::Draft { draft_id, code } => {
                let touched = sqlx::query("UPDATE drafts SET updated_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(draft_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if touched == 0 {
                    tx.rollback().await?;
                    return Ok(Attached::Gone);
                }
                let added = sqlx::query(
                    "INSERT INTO draft_materials (draft_id, code, sm3, uploaded_at)
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(draft_id)
                .bind(code)
                .bind(sm3)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if added == 0 {
                    tx.rollback().await?;
                    return Ok(Attached::Taken);
                }
            }
            Attach::Case {
                case_id,
                code,
                name,
                replace,
            } => {
                let current: Option<String> = sqlx::query_scalar(
                    "SELECT source FROM case_materials WHERE case_id = $1 AND code = $2",
                )
                .bind(case_id)
                .bind(code)
                .fetch_optional(&mut *tx)
                .await?;
                let done = match current.as_deref() {
                    None => sqlx::query(
                        "INSERT INTO case_materials (case_id, code, name, source, sm3)
                         VALUES ($1, $2, $3, 'file', $4) ON CONFLICT DO NOTHING",
                    )
                    .bind(case_id)
                    .bind(code)
                    .bind(name)
                    .bind(sm3)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected(),
                    Some("promised") => sqlx::query(
                        "UPDATE case_materials SET source = 'file', sm3 = $1, due = NULL
                         WHERE case_id = $2 AND code = $3 AND source = 'promised'",
                    )
                    .bind(sm3)
                    .bind(case_id)
                    .bind(code)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected(),
                    Some(_) if replace => sqlx::query(
                        "UPDATE case_materials SET source = 'file', sm3 = $1, licence_id = NULL, due = NULL
                         WHERE case_id = $2 AND code = $3",
                    )
                    .bind(sm3)
                    .bind(case_id)
                    .bind(code)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected(),
                    Some(_) => 0,
                };
                if done == 0 {
                    tx.rollback().await?;
                    return Ok(Attached::Taken);
                }
            }
        }
        sqlx::query("DELETE FROM material_upload_chunks WHERE upload_id = $1")
            .bind(&self.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM material_uploads WHERE id = $1")
            .bind(&self.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Attached::Stored(blob))
    }

    /// Give the upload up: what it stored is removed.
    pub async fn abort(mut self) -> Result<()> {
        self.discard().await
    }

    async fn discard(&mut self) -> Result<()> {
        self.done = true;
        remove_upload(&self.store, &self.id).await
    }
}

async fn remove_upload(store: &Store, id: &str) -> Result<()> {
    let mut tx = store.begin_write().await?;
    sqlx::query("DELETE FROM material_upload_chunks WHERE upload_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM material_uploads WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // The request that wrote it is gone (the client went away mid-upload): remove what
        // it stored. Should this not run (no runtime, the node dies), the sweep removes it.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (store, id) = (self.store.clone(), std::mem::take(&mut self.id));
            runtime.spawn(async move {
                if let Err(e) = remove_upload(&store, &id).await {
                    tracing::warn!(upload = %id, error = %e, "removing an unfinished upload failed; the sweep will");
                }
            });
        }
    }
}

/// Write a new case's materials inside its transaction ([`Store::create_case`]).
pub(crate) async fn insert_case_materials(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    case_id: &str,
    materials: &[NewCaseMaterial],
) -> Result<()> {
    for m in materials {
        let (source, sm3, licence_id, licence_kind, due) = match &m.source {
            NewMaterialSource::File { sm3 } => ("file", Some(sm3.as_str()), None, None, None),
            NewMaterialSource::Licence { id, kind } => (
                "licence",
                None,
                Some(id.as_str()),
                Some(kind.as_str()),
                None,
            ),
            NewMaterialSource::IssuedByStep { kind } => {
                ("licence", None, None, Some(kind.as_str()), None)
            }
            NewMaterialSource::Promised { due } => ("promised", None, None, None, due.as_deref()),
        };
        sqlx::query(
            "INSERT INTO case_materials (case_id, code, name, source, sm3, licence_id, licence_kind, due)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(case_id)
        .bind(&m.code)
        .bind(&m.name)
        .bind(source)
        .bind(sm3)
        .bind(licence_id)
        .bind(licence_kind)
        .bind(due)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
