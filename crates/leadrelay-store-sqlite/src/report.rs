//! What a database holds and the room each table takes, read from the file without the writer,
//! the key or the lock: for the benchmark's bytes-per-lead figure and for operators sizing disks.

use std::path::Path;

use leadrelay_core::storage::{Result, StorageError};
use rusqlite::{Connection, OpenFlags};

use crate::map_err;

/// Bytes by table (its indexes included) and row counts by publisher.
#[derive(Debug, Clone, Default)]
pub struct DatabaseReport {
    /// Table name and the bytes of its pages and its indexes' pages, largest first.
    pub tables: Vec<(String, u64)>,
    /// Leads stored, by publisher id.
    pub leads_by_publisher: Vec<(String, u64)>,
    /// Outbox rows (deliveries in any state), by publisher id.
    pub deliveries_by_publisher: Vec<(String, u64)>,
    /// Deliveries delivered, by publisher id.
    pub delivered_by_publisher: Vec<(String, u64)>,
}

impl DatabaseReport {
    /// Bytes of every table except those named, with their indexes.
    pub fn bytes_except(&self, excluded: &[&str]) -> u64 {
        self.tables.iter().filter(|(t, _)| !excluded.contains(&t.as_str())).map(|(_, b)| b).sum()
    }

    /// Leads of every publisher.
    pub fn leads(&self) -> u64 {
        self.leads_by_publisher.iter().map(|(_, n)| n).sum()
    }

    /// Leads of one publisher.
    pub fn leads_of(&self, publisher: &str) -> u64 {
        count_of(&self.leads_by_publisher, publisher)
    }

    /// Outbox rows of one publisher.
    pub fn deliveries_of(&self, publisher: &str) -> u64 {
        count_of(&self.deliveries_by_publisher, publisher)
    }

    /// Delivered deliveries of one publisher.
    pub fn delivered_of(&self, publisher: &str) -> u64 {
        count_of(&self.delivered_by_publisher, publisher)
    }
}

fn count_of(counts: &[(String, u64)], publisher: &str) -> u64 {
    counts.iter().find(|(p, _)| p == publisher).map_or(0, |(_, n)| *n)
}

/// Reads the report of the database at `path` (read-only; committed data, WAL included).
///
/// # Errors
/// When the file cannot be opened or is not a leadrelay database.
pub fn database_report(path: &Path) -> Result<DatabaseReport> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| StorageError::Unavailable(format!("opening {}: {e}", path.display())))?;
    let pairs = |sql: &str| -> Result<Vec<(String, u64)>> {
        let mut stmt = conn.prepare(sql).map_err(map_err)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).map_err(map_err)?;
        rows.map(|r| r.map(|(k, n)| (k, u64::try_from(n).unwrap_or(0))).map_err(map_err)).collect()
    };
    Ok(DatabaseReport {
        // dbstat lists each b-tree (table or index) by name; sqlite_schema maps an index to its table.
        tables: pairs(
            "SELECT COALESCE(s.tbl_name, d.name), SUM(d.pgsize) FROM dbstat d
             LEFT JOIN sqlite_schema s ON s.name = d.name GROUP BY 1 ORDER BY 2 DESC",
        )?,
        leads_by_publisher: pairs("SELECT publisher_id, COUNT(*) FROM leads GROUP BY publisher_id")?,
        deliveries_by_publisher: pairs("SELECT publisher_id, COUNT(*) FROM deliveries GROUP BY publisher_id")?,
        delivered_by_publisher: pairs(
            "SELECT publisher_id, COUNT(*) FROM deliveries WHERE status = 'delivered' GROUP BY publisher_id",
        )?,
    })
}
