//! Start-up checks, run once per repository branch and process: whose
//! token this is and whether it may write (`whoami-v2`, strictly rate
//! limited by the Hub, so never more than once), then create the dataset
//! if asked. And the probe a `--check` runs: the same token check and
//! whether the branch exists, changing nothing.

use crate::action::{CreateRepo, ListCommits, WhoAmI};
use crate::error::HfError;
use crate::hub::HubClient;

/// Runs the checks; `create` is `Some(private)` to create the repository.
pub(crate) async fn check(
    hub: &HubClient,
    check_token: bool,
    create: Option<bool>,
) -> Result<(), HfError> {
    if check_token {
        whoami(hub).await?;
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

/// The token is valid and may write, and the branch exists (or `create`
/// says the dataset will be made): what a start needs, checked without
/// creating or committing anything.
pub(crate) async fn probe(hub: &HubClient, create: bool) -> Result<(), HfError> {
    whoami(hub).await?;
    let page = hub
        .call(
            "probing the branch",
            ListCommits {
                url: hub.target.commits_url(),
                token: hub.token.clone(),
            },
        )
        .await?;
    match page.missing {
        Some(code) if !create || code == "RevisionNotFound" => Err(HfError::NotFound {
            repo: hub.repo(),
            branch: hub.target.branch.clone(),
            call: "probing the branch",
            code,
            message: "nothing is there yet".into(),
        }),
        _ => Ok(()),
    }
}

/// Whose token this is; a read-only token is refused.
async fn whoami(hub: &HubClient) -> Result<(), HfError> {
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
    Ok(())
}
