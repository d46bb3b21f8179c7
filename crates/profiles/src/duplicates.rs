//! Deduplication of a workspace's profiles (offline and online records alike): the
//! probabilistic matcher of [`crate::dedup`] runs over their name, birth date, address, email
//! and phone traits; sure pairs merge at once (recorded and undoable like any merge), likely
//! ones become suggestions that staff accept or reject.

use crate::{
    Identity, IdentityKind, Profiles, ProfilesError,
    dedup::{self, DedupConfig, DedupRecord, DedupSchema, FieldKind, ScoredPair},
    processor::{ChunkMerge, apply_merge, merge_rows},
    profile_row::{self, ProfileRow},
    resolver::{GraphState, MergeStep},
    service::Result,
    settings,
    sql::{Sql, json},
    traits,
};
use chrono::{DateTime, Utc};
use kernel::{Page, PageRequest, ProfileId, WorkspaceId};
use platform::TenantScope;
use platform::paging::Order;
use sea_orm::ConnectionTrait;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use tenancy::{Actor, Permission};
use uuid::Uuid;

/// Suggestions kept per run; the strongest first.
const MAX_SUGGESTIONS: usize = 10_000;

/// The fields compared, and where each is read from a profile's traits (first found wins).
const FIELDS: [(&str, FieldKind, &[&str]); 8] = [
    ("given_name", FieldKind::GivenName, &["firstName", "first_name", "given_name"]),
    ("surname", FieldKind::Surname, &["lastName", "last_name", "surname"]),
    ("date_of_birth", FieldKind::DateOfBirth, &["birthday", "dateOfBirth", "date_of_birth"]),
    ("street", FieldKind::Street, &["address.street", "street"]),
    ("city", FieldKind::City, &["address.city", "city"]),
    ("postcode", FieldKind::Postcode, &["address.postalCode", "postalCode", "postcode"]),
    ("email", FieldKind::Email, &["email"]),
    ("phone", FieldKind::Phone, &["phone"]),
];

#[derive(Debug, Clone, Copy, Default)]
pub struct DedupOptions {
    /// Match probability from which pairs merge at once (default 0.99).
    pub auto_merge_probability: Option<f64>,
    /// Match probability from which pairs become suggestions (default 0.5).
    pub review_probability: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DedupRun {
    pub profiles_compared: usize,
    pub candidate_pairs: usize,
    pub merged: usize,
    /// Sure pairs the identity rules refused to merge (e.g. two different user ids); they are
    /// offered as suggestions instead.
    pub refused_by_rules: usize,
    pub suggestions: usize,
}

#[derive(Debug, Clone)]
pub struct MergeSuggestion {
    pub id: Uuid,
    pub profile_a: ProfileId,
    pub profile_b: ProfileId,
    pub probability: f64,
    /// Field by field: `{field, level, weight}` in bits of evidence.
    pub explanation: Value,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

fn trait_text(traits: &Map<String, Value>, path: &str) -> Option<String> {
    let mut parts = path.split('.');
    let first = parts.next()?;
    let mut value = traits.get(first)?;
    for part in parts {
        value = value.get(part)?;
    }
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn record(row: &ProfileRow) -> Option<DedupRecord<ProfileId>> {
    let values = traits::values(&row.traits);
    let fields: Vec<Option<String>> =
        FIELDS.iter().map(|(_, _, paths)| paths.iter().find_map(|p| trait_text(&values, p))).collect();
    // A record with a single field cannot be told apart from a namesake.
    (fields.iter().filter(|f| f.is_some()).count() >= 2)
        .then_some(DedupRecord { key: row.id, values: fields })
}

fn explanation(pair: &ScoredPair<ProfileId>) -> Value {
    Value::Array(
        FIELDS
            .iter()
            .zip(&pair.fields)
            .map(|((name, _, _), field)| json!({ "field": name, "level": field.label, "weight": field.weight }))
            .collect(),
    )
}

fn cause(probability: f64) -> Identity {
    Identity { kind: IdentityKind::Custom("dedup".into()), value: format!("p={probability:.4}") }
}

impl Profiles {
    /// Finds duplicate profiles in the workspace; merges the sure ones and replaces the open
    /// suggestions with the likely ones.
    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn run_deduplication(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        options: DedupOptions,
    ) -> Result<DedupRun> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Write).await?;
        let tenant = scope.tenant_id().as_uuid();
        let mut config = DedupConfig::default();
        if let Some(p) = options.auto_merge_probability {
            config.auto_merge_probability = p;
        }
        if let Some(p) = options.review_probability {
            config.review_probability = p;
        }
        let txn = scope.begin(self.db()).await?;
        let mut select =
            Sql::new(&format!("SELECT {} FROM profiles WHERE tenant_id = ", profile_row::COLUMNS));
        select.bind(tenant).push(" AND merged_into IS NULL");
        let rows = select.fetch_all(&txn).await?;
        txn.commit().await?;
        let records: Vec<_> = rows
            .iter()
            .map(ProfileRow::from_row)
            .collect::<Result<Vec<_>, _>>()?
            .iter()
            .filter_map(record)
            .collect();
        let schema = DedupSchema::new(FIELDS.iter().map(|(name, kind, _)| (*name, *kind)));
        let compared = records.len();
        let outcome = tokio::task::spawn_blocking(move || dedup::deduplicate(&schema, &records, &config))
            .await
            .map_err(|e| ProfilesError::Internal(Box::new(e)))?
            .map_err(|e| ProfilesError::invalid(e.to_string()))?;

        let graph = self.graph_transaction(&scope).await?;
        let now = self.now();
        let mut merged = 0;
        let mut refused = Vec::new();
        let mut sure = outcome.auto_merge.clone();
        sure.sort_by(|a, b| b.probability.total_cmp(&a.probability));
        let mut redirects: HashMap<ProfileId, ProfileId> = HashMap::new();
        for pair in sure {
            let (a, b) = (follow(pair.a, &redirects), follow(pair.b, &redirects));
            if a == b {
                continue;
            }
            let (survivor, absorbed) = if a < b { (a, b) } else { (b, a) };
            if self.merge_pair(&graph.txn, &scope, survivor, absorbed, cause(pair.probability), now).await? {
                redirects.insert(absorbed, survivor);
                merged += 1;
            } else {
                refused.push(pair);
            }
        }
        let mut clear = Sql::new("DELETE FROM merge_suggestions WHERE tenant_id = ");
        clear.bind(tenant).push(" AND status = 'open'");
        clear.execute(&graph.txn).await?;
        let refused_by_rules = refused.len();
        let mut offered: Vec<ScoredPair<ProfileId>> =
            refused.into_iter().chain(outcome.suggestions).collect();
        offered.sort_by(|a, b| b.probability.total_cmp(&a.probability));
        offered.truncate(MAX_SUGGESTIONS);
        for chunk in offered.chunks(200) {
            let mut insert = Sql::new(
                "INSERT INTO merge_suggestions (tenant_id, id, profile_a, profile_b, probability, weight, explanation, \
                 status, created_at) VALUES ",
            );
            for (i, pair) in chunk.iter().enumerate() {
                if i > 0 {
                    insert.push(", ");
                }
                insert
                    .push("(")
                    .bind(tenant)
                    .push(", ")
                    .bind(Uuid::now_v7())
                    .push(", ")
                    .bind(pair.a.as_uuid())
                    .push(", ")
                    .bind(pair.b.as_uuid())
                    .push(", ")
                    .bind(pair.probability)
                    .push(", ")
                    .bind(pair.weight)
                    .push(", ")
                    .bind(json(&explanation(pair)))
                    .push(", 'open', ")
                    .bind(now)
                    .push(")");
            }
            insert.execute(&graph.txn).await?;
        }
        graph.commit().await?;
        Ok(DedupRun {
            profiles_compared: compared,
            candidate_pairs: outcome.candidate_pairs,
            merged,
            refused_by_rules,
            suggestions: offered.len(),
        })
    }

    /// Open suggestions, most likely first within creation order.
    pub async fn merge_suggestions(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<MergeSuggestion>> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let mut select =
            Sql::new(&format!("SELECT {SUGGESTION_COLUMNS} FROM merge_suggestions WHERE tenant_id = "));
        select.bind(scope.tenant_id().as_uuid()).push(" AND status = 'open'");
        select.keyset("id", &page, Order::OldestFirst);
        let rows = select.fetch_all(&txn).await?;
        txn.commit().await?;
        let suggestions = rows.iter().map(suggestion).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetched(suggestions, page, |s| s.id))
    }

    /// Accepts (the two profiles merge) or rejects (they are kept apart for good) a suggestion.
    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn decide_merge_suggestion(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: Uuid,
        accept: bool,
    ) -> Result<MergeSuggestion> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Write).await?;
        let tenant = scope.tenant_id().as_uuid();
        let graph = self.graph_transaction(&scope).await?;
        let mut select =
            Sql::new(&format!("SELECT {SUGGESTION_COLUMNS} FROM merge_suggestions WHERE tenant_id = "));
        select.bind(tenant).push(" AND id = ").bind(id);
        let found = select.fetch_one(&graph.txn).await?.ok_or(ProfilesError::NotFound)?;
        let mut found = suggestion(&found)?;
        if found.status != "open" {
            return Err(ProfilesError::Conflict(format!("this suggestion was already {}", found.status)));
        }
        let now = self.now();
        let a = crate::read::live_profile(&graph.txn, &scope, found.profile_a).await?.id;
        let b = crate::read::live_profile(&graph.txn, &scope, found.profile_b).await?.id;
        if accept {
            let (survivor, absorbed) = if a < b { (a, b) } else { (b, a) };
            if a != b
                && !self
                    .merge_pair(&graph.txn, &scope, survivor, absorbed, cause(found.probability), now)
                    .await?
            {
                return Err(ProfilesError::Conflict(
                    "the identity rules forbid merging these profiles (e.g. two different user ids)".into(),
                ));
            }
        } else if a != b {
            let (x, y) = if a < b { (a, b) } else { (b, a) };
            let mut block =
                Sql::new("INSERT INTO merge_blocks (tenant_id, profile_a, profile_b, created_at) VALUES (");
            block
                .bind(tenant)
                .push(", ")
                .bind(x.as_uuid())
                .push(", ")
                .bind(y.as_uuid())
                .push(", ")
                .bind(now)
                .push(") ON CONFLICT (tenant_id, profile_a, profile_b) DO NOTHING");
            block.execute(&graph.txn).await?;
        }
        found.status = if accept { "accepted" } else { "rejected" }.to_owned();
        let mut update = Sql::new("UPDATE merge_suggestions SET status = ");
        update
            .bind(found.status.clone())
            .push(", decided_at = ")
            .bind(now)
            .push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(id);
        update.execute(&graph.txn).await?;
        graph.commit().await?;
        Ok(found)
    }

    /// Merges two live profiles inside a graph transaction when the identity rules allow.
    async fn merge_pair<C: ConnectionTrait>(
        &self,
        txn: &C,
        scope: &TenantScope,
        survivor: ProfileId,
        absorbed: ProfileId,
        cause: Identity,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let tenant = scope.tenant_id().as_uuid();
        let settings = settings::load(txn, tenant).await?;
        let mut rows: HashMap<ProfileId, ProfileRow> = profile_row::load(txn, tenant, &[survivor, absorbed])
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        if rows.len() != 2 || rows.values().any(|r| r.merged_into.is_some()) {
            return Ok(false);
        }
        let mut state = GraphState::default();
        let ids = [survivor.as_uuid(), absorbed.as_uuid()];
        let mut counts =
            Sql::new("SELECT profile_id, kind, COUNT(*) AS n FROM identities WHERE tenant_id = ");
        counts.bind(tenant).push(" AND profile_id IN ").bind_list(ids).push(" GROUP BY profile_id, kind");
        for row in counts.fetch_all(txn).await? {
            let kind: String = row.try_get("", "kind")?;
            let n: i64 = row.try_get("", "n")?;
            if let Ok(kind) = kind.parse() {
                state.know_count(ProfileId::from_uuid(row.try_get("", "profile_id")?), kind, n as u32);
            }
        }
        let mut blocks = Sql::new("SELECT profile_a, profile_b FROM merge_blocks WHERE tenant_id = ");
        blocks
            .bind(tenant)
            .push(" AND profile_a IN ")
            .bind_list(ids)
            .push(" AND profile_b IN ")
            .bind_list(ids);
        for row in blocks.fetch_all(txn).await? {
            state.know_blocked_pair(
                ProfileId::from_uuid(row.try_get("", "profile_a")?),
                ProfileId::from_uuid(row.try_get("", "profile_b")?),
            );
        }
        if !state.merge_if_allowed(survivor, absorbed, &settings.rules) {
            return Ok(false);
        }
        let merge: ChunkMerge =
            merge_rows(&mut rows, MergeStep { survivor, merged: absorbed, cause }, None, now, &settings)?;
        apply_merge(txn, tenant, &merge, now).await?;
        let both: Vec<&ProfileRow> = rows.values().collect();
        profile_row::save_and_record(txn, tenant, &both, &crate::changes::Topics::everything()).await?;
        Ok(true)
    }
}

fn follow(mut id: ProfileId, redirects: &HashMap<ProfileId, ProfileId>) -> ProfileId {
    for _ in 0..=redirects.len() {
        match redirects.get(&id) {
            Some(next) => id = *next,
            None => break,
        }
    }
    id
}

const SUGGESTION_COLUMNS: &str = "id, profile_a, profile_b, probability, explanation, status, created_at";

fn suggestion(row: &sea_orm::QueryResult) -> Result<MergeSuggestion> {
    Ok(MergeSuggestion {
        id: row.try_get("", "id")?,
        profile_a: ProfileId::from_uuid(row.try_get("", "profile_a")?),
        profile_b: ProfileId::from_uuid(row.try_get("", "profile_b")?),
        probability: row.try_get("", "probability")?,
        explanation: row.try_get("", "explanation")?,
        status: row.try_get("", "status")?,
        created_at: row.try_get("", "created_at")?,
    })
}
