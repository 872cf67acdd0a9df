//! Recompute every chain and check every seal: `gateway audit verify`.
//!
//! For each node's chain, in sequence order: the sequence has no gap (a gap is a removed
//! record), each record's hash matches its content, node, place and predecessor (else it was
//! altered, or moved: a record whose hash matches another place of the chain is named as
//! reordered), each record names the hash of the one before it, and the columns repeated for
//! queries agree with the record. Each seal must carry a valid signature by a key the auditor
//! names (or the configured one) over a hash the chain still has at that place; a seal past
//! the chain's end means records were removed from the end. What no seal covers yet (the
//! newest records) is said, since only a seal protects the end of a chain.

use super::Entry;
use super::chain::{StoredRecord, link, row_from, seal_message};
use crate::StoreError;
use base64::Engine as _;
use futures::TryStreamExt as _;
use gateway_base::digest::HashAlgorithm;
use gateway_base::signature::TrustedKey;
use gateway_base::signature::{Algorithm, Verifier};
use sqlx::{AnyPool, Row};
use std::collections::BTreeMap;

/// How far from its place a moved record is still recognised as moved (rather than altered).
const REORDER_WINDOW: i64 = 64;

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The chain.
    pub node: String,
    /// The place in it.
    pub seq: i64,
    /// What is wrong.
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "node {}: seq {}: {}", self.node, self.seq, self.what)
    }
}

/// What one chain holds.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    /// The node.
    pub node: String,
    /// Records read.
    pub records: u64,
    /// The highest sequence number.
    pub last_seq: i64,
    /// Seals.
    pub seals: u64,
    /// The sequence number the newest seal covers (0: none).
    pub sealed_seq: i64,
    /// Records the node could not write (its queue was full), as the chain itself says.
    pub dropped: u64,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Each chain.
    pub chains: Vec<Chain>,
    /// Everything wrong, in chain order.
    pub problems: Vec<Problem>,
    /// Whether seal signatures were checked (a key was given).
    pub signatures_checked: bool,
}

impl Report {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in &self.chains {
            writeln!(
                f,
                "node {}: {} records (seq 1..{}), {} seals, newest seal at seq {} ({} records after it)",
                c.node,
                c.records,
                c.last_seq,
                c.seals,
                c.sealed_seq,
                c.last_seq - c.sealed_seq
            )?;
            if c.dropped > 0 {
                writeln!(
                    f,
                    "node {}: {} records were dropped (queue full) and are not in the log",
                    c.node, c.dropped
                )?;
            }
        }
        if !self.signatures_checked {
            writeln!(
                f,
                "WARNING: seal signatures not checked (no public key): anyone able to write the store could have rewritten the chains"
            )?;
        }
        for p in &self.problems {
            writeln!(f, "problem: {p}")?;
        }
        let records: u64 = self.chains.iter().map(|c| c.records).sum();
        let seals: u64 = self.chains.iter().map(|c| c.seals).sum();
        if self.ok() {
            write!(
                f,
                "OK: {} chains, {records} records, {seals} seals",
                self.chains.len()
            )
        } else {
            write!(
                f,
                "FAILED: {} problems in {} chains ({records} records, {seals} seals)",
                self.problems.len(),
                self.chains.len()
            )
        }
    }
}

/// A public key for seals, from its base64: 32 bytes are Ed25519, anything else SM2 (SEC1).
pub fn public_key(base64: &str) -> Result<Verifier, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    Verifier::new(&TrustedKey {
        id: "audit".into(),
        algorithm: if bytes.len() == 32 {
            Algorithm::Ed25519
        } else {
            Algorithm::Sm2
        },
        public_key: base64.trim().to_string(),
    })
}

/// The keys a running gateway verifies its seals with: the public half of the configured
/// signing key (none without one: then only the chains are checked). `gateway audit verify`
/// uses them when the auditor names no key; the operators' console always does.
pub fn configured_keys(audit: &gateway_base::config::AuditConfig) -> Result<Vec<Verifier>, String> {
    audit
        .key
        .iter()
        .map(|key| Verifier::new(&key.0.trusted_key()))
        .collect()
}

struct Seal {
    hash: String,
    at: i64,
    signature: String,
}

/// Verify every chain in the store; a seal is good when any of `keys` verifies it (none: the
/// signatures are not checked, only that the chain still has what was sealed).
pub async fn verify(pool: &AnyPool, keys: &[Verifier]) -> Result<Report, StoreError> {
    let nodes: Vec<String> =
        sqlx::query("SELECT node FROM audit_log UNION SELECT node FROM audit_seals ORDER BY node")
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| r.get("node"))
            .collect();
    let mut report = Report {
        signatures_checked: !keys.is_empty(),
        ..Report::default()
    };
    for node in nodes {
        let chain = verify_chain(pool, &node, keys, &mut report.problems).await?;
        report.chains.push(chain);
    }
    Ok(report)
}

async fn verify_chain(
    pool: &AnyPool,
    node: &str,
    keys: &[Verifier],
    problems: &mut Vec<Problem>,
) -> Result<Chain, StoreError> {
    let mut problem = |seq: i64, what: String| {
        problems.push(Problem {
            node: node.to_string(),
            seq,
            what,
        })
    };
    let seals: BTreeMap<i64, Seal> = sqlx::query(
        "SELECT seq, hash, at, signature FROM audit_seals WHERE node = $1 ORDER BY seq",
    )
    .bind(node)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        (
            r.get("seq"),
            Seal {
                hash: r.get("hash"),
                at: r.get("at"),
                signature: r.get("signature"),
            },
        )
    })
    .collect();
    let mut chain = Chain {
        node: node.to_string(),
        seals: seals.len() as u64,
        sealed_seq: seals.keys().next_back().copied().unwrap_or(0),
        ..Chain::default()
    };
    let mut sealed_hashes = BTreeMap::new();
    let mut previous: Option<(i64, String)> = None;
    let mut previous_intact = true;
    let mut rows = sqlx::query(
        "SELECT node, seq, at, department, record, prev_hash, hash FROM audit_log
         WHERE node = $1 ORDER BY seq",
    )
    .bind(node)
    .fetch(pool);
    while let Some(row) = rows.try_next().await? {
        let row = row_from(&row);
        chain.records += 1;
        chain.last_seq = row.seq;
        let intact = check_record(&row, &mut problem, &mut chain.dropped);
        let expected_from = previous.as_ref().map_or(1, |(seq, _)| seq + 1);
        if row.seq > expected_from {
            let gap = if row.seq - 1 == expected_from {
                format!("{expected_from}")
            } else {
                format!("{expected_from}..{}", row.seq - 1)
            };
            problem(
                expected_from,
                format!("missing: seq {gap} removed from the chain"),
            );
        } else if intact && previous_intact {
            // Two intact records that do not link: the one before was replaced with its hash
            // recomputed. (Next to a record already found altered or moved, a broken link
            // says nothing more.)
            let expected_prev = previous.as_ref().map_or("", |(_, hash)| hash.as_str());
            if row.prev_hash != expected_prev {
                problem(
                    row.seq,
                    format!(
                        "does not link to seq {}: the chain before it was rewritten",
                        row.seq - 1
                    ),
                );
            }
        }
        if seals.contains_key(&row.seq) {
            sealed_hashes.insert(row.seq, row.hash.clone());
        }
        previous = Some((row.seq, row.hash));
        previous_intact = intact;
    }
    for (seq, seal) in &seals {
        let message = seal_message(node, *seq, &seal.hash, seal.at);
        let signature = base64::engine::general_purpose::STANDARD
            .decode(&seal.signature)
            .unwrap_or_default();
        if !keys.is_empty() && !keys.iter().any(|k| k.verify(&message, &signature)) {
            problem(
                *seq,
                "seal: the signature does not verify with the given public key (forged or altered seal)".into(),
            );
        }
        match sealed_hashes.get(seq) {
            Some(hash) if *hash == seal.hash => {}
            Some(_) => problem(
                *seq,
                "seal: the chain differs from what was sealed (records up to here were rewritten)"
                    .into(),
            ),
            None if *seq > chain.last_seq => problem(
                *seq,
                format!(
                    "seal: sealed at seq {seq} but the chain ends at seq {}: records were removed from its end",
                    chain.last_seq
                ),
            ),
            None => problem(*seq, "seal: the sealed record is missing".into()),
        }
    }
    Ok(chain)
}

/// Check one record on its own: its hash, and its columns against its content. True when
/// its hash matches.
fn check_record(
    row: &StoredRecord,
    problem: &mut impl FnMut(i64, String),
    dropped: &mut u64,
) -> bool {
    match serde_json::from_str::<Entry>(&row.record) {
        Ok(entry) => {
            if let Entry::Dropped { count, .. } = entry {
                *dropped += count;
            }
            if entry.at() != row.at || entry.department() != row.department.as_deref() {
                problem(
                    row.seq,
                    "its `at` or `department` column differs from the record".into(),
                );
            }
        }
        Err(e) => problem(row.seq, format!("the record is not readable: {e}")),
    }
    let Some(algorithm) = HashAlgorithm::of(&row.hash) else {
        problem(row.seq, "its hash names no known algorithm".into());
        return false;
    };
    let link = |seq| link(algorithm, &row.node, seq, &row.prev_hash, &row.record);
    if link(row.seq) == row.hash {
        return true;
    }
    let moved_from = (row.seq - REORDER_WINDOW..=row.seq + REORDER_WINDOW)
        .filter(|s| *s > 0 && *s != row.seq)
        .find(|s| link(*s) == row.hash);
    match moved_from {
        Some(original) => problem(
            row.seq,
            format!("holds the record written as seq {original}: records were reordered"),
        ),
        None => problem(row.seq, "edited: the record does not match its hash".into()),
    }
    false
}
