//! What is hashed and what is signed, and the tables they live in.
//!
//! A record's hash is `H(node "\n" seq "\n" prev_hash "\n" record)` over the record's JSON
//! text exactly as stored, written `<algorithm>:<hex>` so a chain says how to recompute it.
//! Node and sequence are inside the hash: a record moved to another place in the chain, or to
//! another node's chain, no longer matches. The first record of a chain has an empty
//! `prev_hash`. A seal signs `node`, `seq` and `hash` of the chain's head at that moment.

use crate::StoreError;
use gateway_base::digest::HashAlgorithm;
use serde::Serialize;
use sqlx::{AnyPool, Row};

/// The chain hash of a record at `seq` after `prev_hash` (the record's JSON text as stored).
pub fn link(hash: HashAlgorithm, node: &str, seq: i64, prev_hash: &str, record: &str) -> String {
    let head = format!("{node}\n{seq}\n{prev_hash}\n");
    format!(
        "{}:{}",
        hash.name(),
        sdk::sign::to_hex(hash.digest(&[head.as_bytes(), record.as_bytes()]))
    )
}

/// What a seal's signature covers.
pub fn seal_message(node: &str, seq: i64, hash: &str, at: i64) -> Vec<u8> {
    format!("gov-gateway-audit-seal/1\n{node}\n{seq}\n{hash}\n{at}").into_bytes()
}

/// One stored record.
#[derive(Debug, Clone, Serialize)]
pub struct StoredRecord {
    /// The node whose chain it is in.
    pub node: String,
    /// Its place in that chain, from 1.
    pub seq: i64,
    /// Unix milliseconds (column).
    pub at: i64,
    /// Department (column).
    pub department: Option<String>,
    /// The record's JSON text.
    pub record: String,
    /// The hash of the record before it.
    pub prev_hash: String,
    /// Its own hash.
    pub hash: String,
}

pub(crate) fn row_from(r: &sqlx::any::AnyRow) -> StoredRecord {
    StoredRecord {
        node: r.get("node"),
        seq: r.get("seq"),
        at: r.get("at"),
        department: r.get("department"),
        record: r.get("record"),
        prev_hash: r.get("prev_hash"),
        hash: r.get("hash"),
    }
}

/// Records by department, node and time, oldest first (the admin route).
pub async fn read(
    pool: &AnyPool,
    department: Option<&str>,
    node: Option<&str>,
    since: i64,
    limit: i64,
) -> Result<Vec<serde_json::Value>, StoreError> {
    let rows = sqlx::query(
        "SELECT node, seq, at, department, record, prev_hash, hash FROM audit_log
         WHERE at >= $1 AND ($2 = '' OR department = $2) AND ($3 = '' OR node = $3)
         ORDER BY at, node, seq LIMIT $4",
    )
    .bind(since)
    .bind(department.unwrap_or(""))
    .bind(node.unwrap_or(""))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let row = row_from(r);
            serde_json::json!({
                "node": row.node, "seq": row.seq, "hash": row.hash,
                "record": serde_json::from_str::<serde_json::Value>(&row.record)
                    .unwrap_or(serde_json::Value::String(row.record.clone())),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_name_their_algorithm_and_bind_node_and_place() {
        let sm3 = link(HashAlgorithm::Sm3, "a", 1, "", "{}");
        assert!(sm3.starts_with("sm3:") && sm3.len() == 4 + 64);
        assert_eq!(HashAlgorithm::of(&sm3), Some(HashAlgorithm::Sm3));
        let sha = link(HashAlgorithm::Sha256, "a", 1, "", "{}");
        assert_eq!(HashAlgorithm::of(&sha), Some(HashAlgorithm::Sha256));
        assert_ne!(sm3, link(HashAlgorithm::Sm3, "a", 2, "", "{}"));
        assert_ne!(sm3, link(HashAlgorithm::Sm3, "b", 1, "", "{}"));
        // SM3 of "abc" (GB/T 32905 example 1).
        assert_eq!(
            HashAlgorithm::Sm3.hex(b"abc"),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
    }
}
