//! A workspace's content: reusable blocks (a footer, a signature) and templates with one
//! variant per channel family. Saving checks the template's syntax; publishing a journey
//! checks everything a send will need (see [`Campaigns::snapshot_for_send`]), so a missing
//! variable is found at publish time, not as a blank at send time.

use crate::channel::ChannelKind;
use crate::content::{ContentLibrary, ContentProblem, Rendered, Template, VariantKind};
use crate::error::{CampaignsError, Problem, Result};
use crate::service::Campaigns;
use chrono::{DateTime, Utc};
use kernel::{ContentId, Page, PageRequest, ProfileId, WorkspaceId};
use platform::TenantScope;
use platform::paging::Order;
use platform::sql::{Sql, json};
use sea_orm::{ConnectionTrait, QueryResult};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use tenancy::{Actor, Permission};

const MAX_BLOCKS: usize = 200;
const MAX_BLOCK_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct Content {
    pub id: ContentId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub template: Template,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Content frozen into a published journey version: the template and the blocks it can
/// include, as they were at publish time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContentSnapshot {
    pub template: Template,
    pub blocks: BTreeMap<String, String>,
}

impl Campaigns {
    /// Creates or replaces a reusable block.
    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn set_content_block(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        name: &str,
        body: &str,
    ) -> Result<()> {
        let scope = self.authorize(actor, workspace, Permission::Write).await?;
        if body.len() > MAX_BLOCK_BYTES {
            return Err(CampaignsError::invalid("a block must be under 64 KB"));
        }
        let txn = scope.begin_write(self.db()).await?;
        let mut blocks = load_blocks(&txn, workspace).await?;
        if !blocks.contains_key(name) && blocks.len() >= MAX_BLOCKS {
            return Err(CampaignsError::invalid(format!("a workspace holds at most {MAX_BLOCKS} blocks")));
        }
        blocks.insert(name.to_owned(), body.to_owned());
        // The whole library must still hold together (names, syntax, includes, cycles).
        ContentLibrary::new(&blocks).map_err(invalid)?;
        let mut upsert = Sql::new("INSERT INTO content_blocks (tenant_id, name, body, updated_at) VALUES (");
        upsert
            .bind(workspace.as_uuid())
            .push(", ")
            .bind(name.to_owned())
            .push(", ")
            .bind(body.to_owned())
            .push(", ")
            .bind(self.now())
            .push(") ON CONFLICT (tenant_id, name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at");
        upsert.execute(&txn).await?;
        txn.commit().await?;
        Ok(())
    }

    pub async fn content_blocks(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
    ) -> Result<BTreeMap<String, String>> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let blocks = load_blocks(&txn, workspace).await?;
        txn.commit().await?;
        Ok(blocks)
    }

    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn create_content(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        name: &str,
        template: serde_json::Value,
    ) -> Result<Content> {
        let scope = self.authorize(actor, workspace, Permission::Write).await?;
        let name = crate::check_name(name, "content")?;
        let txn = scope.begin_write(self.db()).await?;
        let template = self.checked_template(&txn, workspace, template).await?;
        let now = self.now();
        let content = Content {
            id: ContentId::new(),
            workspace_id: workspace,
            name,
            template,
            created_at: now,
            updated_at: now,
        };
        crate::ensure_name_free(&txn, crate::Named::Content, workspace, &content.name, None).await?;
        let mut insert =
            Sql::new("INSERT INTO contents (tenant_id, id, name, template, created_at, updated_at) VALUES (");
        insert
            .bind(workspace.as_uuid())
            .push(", ")
            .bind(content.id.as_uuid())
            .push(", ")
            .bind(content.name.clone())
            .push(", ")
            .bind(json(&serde_json::to_value(&content.template)?))
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(")");
        insert.execute(&txn).await?;
        txn.commit().await?;
        Ok(content)
    }

    /// Replaces a content's template (journeys already published keep the one they froze).
    #[tracing::instrument(skip_all, fields(workspace = %workspace, content = %id))]
    pub async fn update_content(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: ContentId,
        name: Option<&str>,
        template: Option<serde_json::Value>,
    ) -> Result<Content> {
        let scope = self.authorize(actor, workspace, Permission::Write).await?;
        let txn = scope.begin_write(self.db()).await?;
        let mut content = load(&txn, workspace, id).await?;
        if let Some(name) = name {
            content.name = crate::check_name(name, "content")?;
            crate::ensure_name_free(
                &txn,
                crate::Named::Content,
                workspace,
                &content.name,
                Some(id.as_uuid()),
            )
            .await?;
        }
        if let Some(template) = template {
            content.template = self.checked_template(&txn, workspace, template).await?;
        }
        content.updated_at = self.now();
        let mut update = Sql::new("UPDATE contents SET name = ");
        update
            .bind(content.name.clone())
            .push(", template = ")
            .bind(json(&serde_json::to_value(&content.template)?))
            .push(", updated_at = ")
            .bind(content.updated_at)
            .push(" WHERE tenant_id = ")
            .bind(workspace.as_uuid())
            .push(" AND id = ")
            .bind(id.as_uuid());
        update.execute(&txn).await?;
        txn.commit().await?;
        Ok(content)
    }

    pub async fn content(&self, actor: &Actor, workspace: WorkspaceId, id: ContentId) -> Result<Content> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let content = load(&txn, workspace, id).await?;
        txn.commit().await?;
        Ok(content)
    }

    pub async fn contents(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<Content>> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let mut select = Sql::new(&format!("SELECT {COLUMNS} FROM contents WHERE tenant_id = "));
        select.bind(workspace.as_uuid()).keyset("id", &page, Order::OldestFirst);
        let rows = select.fetch_all(&txn).await?;
        txn.commit().await?;
        let contents = rows.iter().map(content_from).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetched(contents, page, |c| c.id.as_uuid()))
    }

    /// Renders a content's variant for a real profile, as a send would, without sending.
    pub async fn preview_content(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: ContentId,
        variant: &str,
        profile: ProfileId,
    ) -> Result<Rendered> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let kind = VariantKind::parse(variant)
            .ok_or_else(|| CampaignsError::invalid(format!("\"{variant}\" is not a content variant")))?;
        let txn = scope.begin(self.db()).await?;
        let content = load(&txn, workspace, id).await?;
        let blocks = load_blocks(&txn, workspace).await?;
        let sheets = profiles::contact::contact_sheets(&txn, &scope, &[profile]).await?;
        txn.commit().await?;
        let sheet = sheets.get(&profile).ok_or(CampaignsError::NotFound)?;
        let mut traits = sheet.traits.clone();
        traits.insert("id".into(), serde_json::Value::String(sheet.id.to_string()));
        let context =
            serde_json::json!({"profile": traits, "journey": {"name": "Preview", "step": "preview"}});
        let library = ContentLibrary::new(&blocks).map_err(invalid)?;
        let prepared = library.prepare(&content.template).map_err(invalid)?;
        prepared.render(kind, &context).map_err(|error| {
            CampaignsError::invalid(format!("the {variant} variant cannot be rendered: {error}"))
        })
    }

    /// What a send step on a `kind` channel freezes at publish: the content and its blocks,
    /// checked in full — the variant exists, the syntax is sound, and every profile variable
    /// it uses is a trait some profile of the workspace has (a typo is caught here).
    pub(crate) async fn snapshot_for_send<C: ConnectionTrait>(
        &self,
        conn: &C,
        scope: &TenantScope,
        id: ContentId,
        kind: ChannelKind,
        factors: &BTreeSet<&str>,
    ) -> Result<std::result::Result<ContentSnapshot, Vec<Problem>>> {
        let workspace = WorkspaceId::from_uuid(scope.tenant_id().as_uuid());
        let content = match load(conn, workspace, id).await {
            Ok(content) => content,
            Err(CampaignsError::NotFound) => {
                return Ok(Err(vec![Problem {
                    code: "unknown_content".into(),
                    location: None,
                    message: format!("The content {id} does not exist."),
                }]));
            }
            Err(error) => return Err(error),
        };
        if !content.template.variants.iter().any(|v| v.kind() == kind.variant()) {
            return Ok(Err(vec![Problem {
                code: "missing_variant".into(),
                location: None,
                message: format!(
                    "\"{}\" has no {} variant for a {} channel.",
                    content.name,
                    kind.variant().as_str(),
                    kind.as_str()
                ),
            }]));
        }
        let blocks = load_blocks(conn, workspace).await?;
        let library = match ContentLibrary::new(&blocks) {
            Ok(library) => library,
            Err(problems) => return Ok(Err(problems.into_iter().map(Problem::from).collect())),
        };
        // First every variable the template uses, then which of them profiles have.
        let info = match library.validate(&content.template, &|_| true) {
            Ok(info) => info,
            Err(problems) => return Ok(Err(problems.into_iter().map(Problem::from).collect())),
        };
        let names: BTreeSet<String> = info
            .profile_paths()
            .into_iter()
            .filter_map(|path| path.split('.').next())
            .filter(|name| *name != "id")
            .map(str::to_owned)
            .collect();
        let names: Vec<String> = names.into_iter().collect();
        // A multivariate factor the journey does not define would fail at every send.
        let unknown_factors: Vec<Problem> = info
            .variables()
            .into_iter()
            .filter_map(|variable| variable.strip_prefix("experiment."))
            .map(|path| path.split('.').next().unwrap_or(path))
            .filter(|factor| !factors.contains(factor))
            .map(|factor| Problem {
                code: "unknown_factor".into(),
                location: None,
                message: format!(
                    "\"{}\" uses \"experiment.{factor}\", but no multivariate step of this journey has a factor \
                     named \"{factor}\".",
                    content.name
                ),
            })
            .collect();
        if !unknown_factors.is_empty() {
            return Ok(Err(unknown_factors));
        }
        let in_use = segments::journeys::traits_in_use(conn, scope, &names, self.now()).await?;
        let known = |path: &str| {
            let name = path.split('.').next().unwrap_or(path);
            name == "id" || in_use.contains(name)
        };
        match library.validate(&content.template, &known) {
            Ok(_) => Ok(Ok(ContentSnapshot { template: content.template, blocks })),
            Err(problems) => Ok(Err(problems.into_iter().map(Problem::from).collect())),
        }
    }

    async fn checked_template<C: ConnectionTrait>(
        &self,
        conn: &C,
        workspace: WorkspaceId,
        template: serde_json::Value,
    ) -> Result<Template> {
        let template: Template = serde_json::from_value(template)
            .map_err(|e| CampaignsError::invalid(format!("the template is not valid: {e}")))?;
        let blocks = load_blocks(conn, workspace).await?;
        let library = ContentLibrary::new(&blocks).map_err(invalid)?;
        // Syntax and structure now; the variables are checked when a journey is published.
        library.validate(&template, &|_| true).map_err(invalid)?;
        Ok(template)
    }
}

impl From<ContentProblem> for Problem {
    fn from(p: ContentProblem) -> Self {
        let place = match (&p.variant, &p.field, &p.block) {
            (Some(variant), Some(field), _) => Some(format!("{variant}.{field}")),
            (Some(variant), None, _) => Some(variant.clone()),
            (None, _, Some(block)) => Some(format!("block {block}")),
            _ => None,
        };
        let location = match (place, p.line) {
            (Some(place), Some(line)) => Some(format!("{place}, line {line}")),
            (place, _) => place,
        };
        Problem { code: p.code.to_owned(), location, message: p.message }
    }
}

fn invalid(problems: Vec<ContentProblem>) -> CampaignsError {
    CampaignsError::Invalid(problems.into_iter().map(Problem::from).collect())
}

pub(crate) async fn load_blocks<C: ConnectionTrait>(
    conn: &C,
    workspace: WorkspaceId,
) -> Result<BTreeMap<String, String>> {
    let mut select = Sql::new("SELECT name, body FROM content_blocks WHERE tenant_id = ");
    select.bind(workspace.as_uuid());
    let mut blocks = BTreeMap::new();
    for row in select.fetch_all(conn).await? {
        blocks.insert(row.try_get("", "name")?, row.try_get("", "body")?);
    }
    Ok(blocks)
}

const COLUMNS: &str = "tenant_id, id, name, template, created_at, updated_at";

async fn load<C: ConnectionTrait>(conn: &C, workspace: WorkspaceId, id: ContentId) -> Result<Content> {
    let mut select = Sql::new(&format!("SELECT {COLUMNS} FROM contents WHERE tenant_id = "));
    select.bind(workspace.as_uuid()).push(" AND id = ").bind(id.as_uuid());
    match select.fetch_one(conn).await? {
        Some(row) => content_from(&row),
        None => Err(CampaignsError::NotFound),
    }
}

fn content_from(row: &QueryResult) -> Result<Content> {
    Ok(Content {
        id: ContentId::from_uuid(row.try_get("", "id")?),
        workspace_id: WorkspaceId::from_uuid(row.try_get("", "tenant_id")?),
        name: row.try_get("", "name")?,
        template: serde_json::from_value(row.try_get("", "template")?)?,
        created_at: row.try_get("", "created_at")?,
        updated_at: row.try_get("", "updated_at")?,
    })
}
