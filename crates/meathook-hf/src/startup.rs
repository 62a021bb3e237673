//! Start-up checks, run once per repository branch and process: whose
//! token this is and whether it may write (`whoami-v2`, strictly rate
//! limited by the Hub, so never more than once), then create the dataset
//! if asked.

use crate::action::{CreateRepo, WhoAmI};
use crate::error::HfError;
use crate::hub::HubClient;

/// Runs the checks; `create` is `Some(private)` to create the repository.
pub(crate) async fn check(
    hub: &HubClient,
    check_token: bool,
    create: Option<bool>,
) -> Result<(), HfError> {
    if check_token {
        let who = hub
            .call(
                "whoami",
                WhoAmI {
                    target: hub.target.clone(),
                    token: hub.token.clone(),
                },
            )
            .await?;
        if who.role.as_deref() == Some("read") {
            return Err(HfError::Forbidden {
                repo: hub.repo(),
                call: "whoami",
                token_var: hub.token_var.clone(),
                message: format!("the token of {} is read-only", who.name),
            });
        }
        tracing::info!(repo = %hub.repo(), user = %who.name, "HuggingFace token accepted");
    }
    if let Some(private) = create {
        let created = hub
            .call(
                "creating the dataset",
                CreateRepo {
                    target: hub.target.clone(),
                    token: hub.token.clone(),
                    private,
                },
            )
            .await?;
        if created {
            tracing::info!(repo = %hub.repo(), private, "created the dataset");
        }
    }
    Ok(())
}
