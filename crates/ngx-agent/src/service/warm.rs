//! Warming the customer tail: the profiles and program recommendations of
//! the most recently active customers, so their first reads are hits.

use std::sync::Arc;
use std::time::Instant;

use ngx_cache::WarmReport;

use crate::cache::NgxCacheManager;
use crate::compute::recommend_program;
use crate::domain::{CustomerProfile, Program, ProgramRecommendation};

/// Customers per batch: one `spawn_blocking` computes the batch's
/// recommendations, then the batch is written.
const BATCH: usize = 500;

/// Entries written to Redis at a time.
const CONCURRENCY: usize = 16;

/// Caches each profile and its recommendation over `catalog` (every
/// recommendation fails without a catalog), keeping values already cached.
/// The report counts two entries per customer; `progress` gets it after
/// each entry. Logs one line with the counts and the time since `started`
/// (when reading the profiles began).
pub(super) async fn customers(
    cache: &NgxCacheManager,
    profiles: Vec<CustomerProfile>,
    catalog: Option<Arc<Vec<Program>>>,
    started: Instant,
    progress: impl Fn(&WarmReport),
) -> WarmReport {
    let customers = profiles.len();
    let mut report = WarmReport {
        total: 2 * customers,
        ..WarmReport::default()
    };
    let mut recommended = 0;
    let mut profiles = profiles.into_iter();
    loop {
        let batch: Vec<CustomerProfile> = profiles.by_ref().take(BATCH).collect();
        if batch.is_empty() {
            break;
        }
        let (batch, recommendations) = recommend(batch, catalog.clone()).await;

        let mut rec_entries = Vec::with_capacity(batch.len());
        let mut failed = 0;
        for (profile, recommendation) in batch.iter().zip(recommendations) {
            match recommendation {
                Some(r) => rec_entries.push(cache.recommendation_warm_entry(profile, r)),
                None => failed += 1,
            }
        }
        let entries = batch
            .into_iter()
            .map(|p| cache.customer_warm_entry(p))
            .collect();
        let base = report;
        let part = cache
            .cache()
            .warm(entries, CONCURRENCY, |p| progress(&add(base, p)))
            .await;
        report = add(report, &part);

        let base = report;
        let part = cache
            .cache()
            .warm(rec_entries, CONCURRENCY, |p| progress(&add(base, p)))
            .await;
        recommended += part.done;
        report = add(report, &part);
        if failed > 0 {
            report.failed += failed;
            progress(&report);
        }
    }
    tracing::info!(
        customers,
        profiles = report.done - recommended,
        recommendations = recommended,
        failed = report.failed,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "customers warmed"
    );
    report
}

/// `base` plus the counts of `part` (the total stays `base`'s).
fn add(base: WarmReport, part: &WarmReport) -> WarmReport {
    WarmReport {
        total: base.total,
        done: base.done + part.done,
        failed: base.failed + part.failed,
        skipped: base.skipped + part.skipped,
    }
}

/// The recommendation of each profile, as
/// [`ProgramService::recommend`](super::ProgramService::recommend) computes
/// it on a miss (`None` where it fails), computed off the runtime.
async fn recommend(
    batch: Vec<CustomerProfile>,
    catalog: Option<Arc<Vec<Program>>>,
) -> (Vec<CustomerProfile>, Vec<Option<ProgramRecommendation>>) {
    let Some(catalog) = catalog else {
        let none = vec![None; batch.len()];
        return (batch, none);
    };
    let n = batch.len();
    let batch = Arc::new(batch);
    let shared = Arc::clone(&batch);
    let computed = tokio::task::spawn_blocking(move || {
        shared
            .iter()
            .map(|p| recommend_program(p, &catalog).ok())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_else(|_| vec![None; n]);
    // The blocking task has ended, so the batch is ours again.
    let batch = Arc::try_unwrap(batch).unwrap_or_else(|shared| (*shared).clone());
    (batch, computed)
}
