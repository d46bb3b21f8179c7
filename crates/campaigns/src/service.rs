//! The campaigns service: what the gateway and the workers call.

use crate::channel::ChannelKind;
use crate::content::{ContentLibrary, PreparedTemplate, RenderError, Rendered};
use crate::error::{CampaignsError, Result};
use crate::journeys::PublishedVersion;
use chrono::{DateTime, Utc};
use kernel::{Clock, ContentId, JourneyId, WorkspaceId};
use platform::{Db, TenantScope};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::RwLock;
use tenancy::{Actor, Permission, Tenancy};
use uuid::Uuid;

/// What the deployment decides for campaigns.
#[derive(Debug, Clone)]
pub struct CampaignsConfig {
    /// How long a delivery worker holds a send it is delivering.
    pub delivery_lease: std::time::Duration,
    /// Where audience channels write their files (each channel's directory is inside it).
    pub audience_root: std::path::PathBuf,
    /// Whether webhooks may reach private addresses (loopback, private networks, link-local:
    /// cloud metadata). Off in production; on for local development and tests.
    pub webhooks_to_private_addresses: bool,
}

#[derive(Clone)]
pub struct Campaigns {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    tenancy: Tenancy,
    profiles: profiles::Profiles,
    http: reqwest::Client,
    relays: crate::smtp::Relays,
    clock: Arc<dyn Clock>,
    segments: segments::Segments,
    /// Audience files are written under this directory only.
    audience_root: std::path::PathBuf,
    webhooks_to_private_addresses: bool,
    /// How long a delivery worker holds a send it is delivering.
    delivery_lease: chrono::Duration,
    /// Wakes the delivery loop when the executor has queued sends.
    sends_ready: tokio::sync::Notify,
    /// Published versions, parsed and prepared once: a version never changes.
    versions: RwLock<HashMap<VersionKey, Arc<LoadedVersion>>>,
}

type VersionKey = (Uuid, JourneyId, i32);

/// A published version ready to run: its graph, its templates prepared for rendering, and its
/// branch conditions parsed.
pub(crate) struct LoadedVersion {
    pub published: PublishedVersion,
    templates: HashMap<ContentId, PreparedTemplate>,
    conditions: HashMap<String, segments::Condition>,
}

impl LoadedVersion {
    pub(crate) fn prepare(published: PublishedVersion) -> Result<Self> {
        let mut templates = HashMap::new();
        for (id, snapshot) in &published.contents {
            let prepared = ContentLibrary::new(&snapshot.blocks)
                .and_then(|library| library.prepare(&snapshot.template))
                .map_err(|problems| {
                    CampaignsError::Internal(
                        format!("a published template no longer prepares: {problems:?}").into(),
                    )
                })?;
            templates.insert(*id, prepared);
        }
        let mut conditions = HashMap::new();
        for (step, condition) in published.graph.branch_conditions() {
            let parsed = match condition {
                serde_json::Value::String(text) => segments::DefinitionInput::Text(text.clone()).parse()?,
                other => segments::DefinitionInput::Json(other.clone()).parse()?,
            };
            conditions.insert(step.to_owned(), parsed);
        }
        Ok(Self { published, templates, conditions })
    }

    pub(crate) fn render(
        &self,
        content: ContentId,
        kind: ChannelKind,
        context: &serde_json::Value,
    ) -> std::result::Result<Rendered, RenderError> {
        match self.templates.get(&content) {
            Some(template) => template.render(kind.variant(), context),
            None => Err(RenderError::NoVariant { kind: kind.variant() }),
        }
    }

    pub(crate) fn condition(&self, step: &str) -> Result<&segments::Condition> {
        self.conditions
            .get(step)
            .ok_or_else(|| CampaignsError::Internal(format!("no condition for step {step}").into()))
    }
}

impl Campaigns {
    pub fn new(
        db: Db,
        tenancy: Tenancy,
        profiles: profiles::Profiles,
        segments: segments::Segments,
        clock: Arc<dyn Clock>,
        config: CampaignsConfig,
    ) -> Self {
        // Webhook receivers that hang must not hold a delivery slot for long.
        let mut http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .connect_timeout(std::time::Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none());
        if !config.webhooks_to_private_addresses {
            http = http.dns_resolver(Arc::new(crate::egress::PublicAddressesOnly));
        }
        let http = http.build().unwrap_or_default();
        Self {
            inner: Arc::new(Inner {
                db,
                tenancy,
                profiles,
                http,
                relays: crate::smtp::Relays::default(),
                clock,
                segments,
                audience_root: config.audience_root,
                webhooks_to_private_addresses: config.webhooks_to_private_addresses,
                delivery_lease: chrono::Duration::from_std(config.delivery_lease)
                    .unwrap_or_else(|_| chrono::Duration::seconds(60)),
                sends_ready: tokio::sync::Notify::new(),
                versions: RwLock::new(HashMap::new()),
            }),
        }
    }

    pub(crate) fn db(&self) -> &Db {
        &self.inner.db
    }

    pub(crate) fn tenancy(&self) -> &Tenancy {
        &self.inner.tenancy
    }

    pub(crate) fn profiles(&self) -> &profiles::Profiles {
        &self.inner.profiles
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn relays(&self) -> &crate::smtp::Relays {
        &self.inner.relays
    }

    pub(crate) fn segments(&self) -> &segments::Segments {
        &self.inner.segments
    }

    pub(crate) fn webhooks_to_private_addresses(&self) -> bool {
        self.inner.webhooks_to_private_addresses
    }

    pub(crate) fn audience_root(&self) -> &std::path::Path {
        &self.inner.audience_root
    }

    pub(crate) fn delivery_lease(&self) -> chrono::Duration {
        self.inner.delivery_lease
    }

    pub(crate) fn sends_ready(&self) -> &tokio::sync::Notify {
        &self.inner.sends_ready
    }

    pub(crate) fn cached_version(&self, key: &VersionKey) -> Option<Arc<LoadedVersion>> {
        self.inner.versions.read().ok().and_then(|versions| versions.get(key).cloned())
    }

    pub(crate) fn cache_version(&self, key: VersionKey, loaded: Arc<LoadedVersion>) {
        if let Ok(mut versions) = self.inner.versions.write() {
            versions.insert(key, loaded);
        }
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    pub(crate) async fn authorize(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        permission: Permission,
    ) -> Result<TenantScope> {
        Ok(self.inner.tenancy.authorize(actor, workspace, permission).await?)
    }
}
