//! `POST /admin/v1/config/reload`: read the config file again and apply it whole or refuse it
//! whole. The reload itself is the running gateway's ([`Reload`]); this is its route.

use crate::auth::Operator;
use crate::error::ApiError;
use gateway_base::config::reload::{ReloadError, Reloaded};
use gateway_base::model::FieldProblem;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

/// A running gateway's config reload.
pub trait Reload: Send + Sync {
    /// Reload on behalf of `operator` (recorded with the change).
    fn reload<'a>(
        &'a self,
        operator: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Reloaded, ReloadError>> + Send + 'a>>;

    /// The file a reload reads.
    fn file(&self) -> PathBuf;
}

/// The reload route.
pub fn router(reloader: Arc<dyn Reload>) -> axum::Router {
    axum::Router::new()
        .route("/admin/v1/config/reload", axum::routing::post(reload))
        .with_state(reloader)
}

async fn reload(
    axum::extract::State(reloader): axum::extract::State<Arc<dyn Reload>>,
    axum::Extension(operator): axum::Extension<Operator>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let reloaded = reload_as(reloader.as_ref(), &operator.id).await?;
    Ok(axum::Json(serde_json::json!({
        "reloaded": true,
        "file": reloader.file().display().to_string(),
        "changes": reloaded.changes,
        "needs_restart": reloaded.needs_restart,
    })))
}

/// Reload for `operator` (the API's route and the console's button): a refused config is
/// every problem with its file, key and reason.
pub(crate) async fn reload_as(reloader: &dyn Reload, operator: &str) -> Result<Reloaded, ApiError> {
    match reloader.reload(operator).await {
        Ok(reloaded) => Ok(reloaded),
        Err(ReloadError::Refused(problems)) => Err(ApiError::ConfigRefused(
            problems
                .into_iter()
                .map(|p| {
                    FieldProblem::new(p.key, "config", p.reason)
                        .in_file(p.file.display().to_string())
                })
                .collect(),
        )),
        Err(ReloadError::Failed(why)) => Err(ApiError::Internal(why)),
    }
}
