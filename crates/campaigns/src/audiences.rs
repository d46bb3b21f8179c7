//! Audience channels: a segment written as a file for the platforms that take audiences rather
//! than messages — hashed identifiers for ad platforms and walled gardens, postal lists for
//! direct mail, phone lists for call centres — with consent and the minors rule checked per
//! person by the segments export. Files go into the channel's directory under the deployment's
//! audience root, written under a temporary name and renamed, so a reader never sees half.

use crate::channel::{ChannelKind, Delivery};
use crate::channels;
use crate::error::{CampaignsError, Result};
use crate::executor::PURPOSE;
use crate::service::Campaigns;
use kernel::{ChannelId, SegmentId, WorkspaceId};
use segments::export::{AudienceFormat, ExportRequest};
use tenancy::{Actor, Permission};
use tokio::io::AsyncWriteExt;

/// A file written for an audience channel.
#[derive(Debug, Clone)]
pub struct AudienceFile {
    /// The file's name inside the channel's directory.
    pub name: String,
    /// Rows written, the header excluded.
    pub rows: u64,
    pub bytes: u64,
}

impl Campaigns {
    /// Writes `segment`'s members who may be contacted on the channel as a CSV file in the
    /// channel's directory. The format follows the channel (postal for direct mail, phone for
    /// call centres, hashed identifiers otherwise) unless one is given.
    #[tracing::instrument(skip_all, fields(workspace = %workspace, channel = %channel, segment = %segment))]
    pub async fn sync_audience(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        channel: ChannelId,
        segment: SegmentId,
        format: Option<&str>,
    ) -> Result<AudienceFile> {
        let scope = self.authorize(actor, workspace, Permission::Write).await?;
        let txn = scope.begin(self.db()).await?;
        let configured = channels::load(&txn, workspace, channel).await?;
        txn.commit().await?;
        let Delivery::AudienceFile { directory } = &configured.delivery else {
            return Err(CampaignsError::invalid(format!(
                "\"{}\" does not deliver audience files",
                configured.name
            )));
        };
        let format = match format {
            Some(name) => AudienceFormat::parse(name)?,
            None => match configured.kind {
                ChannelKind::DirectMail => AudienceFormat::Postal,
                ChannelKind::CallCenter => AudienceFormat::Phone,
                _ => AudienceFormat::Hashed,
            },
        };
        let request = ExportRequest {
            format,
            channel: configured.kind.as_str().to_owned(),
            purpose: PURPOSE.to_owned(),
        };
        let mut export = self.segments().start_export(actor, workspace, segment, request).await?;
        let folder = self.audience_root().join(workspace.to_string()).join(directory);
        tokio::fs::create_dir_all(&folder).await.map_err(CampaignsError::internal)?;
        let name = format!("{segment}-{}.csv", self.now().format("%Y%m%dT%H%M%S%.3fZ"));
        let partial = folder.join(format!(".{name}.part"));
        let mut file = tokio::fs::File::create(&partial).await.map_err(CampaignsError::internal)?;
        let mut bytes = 0u64;
        while let Some(chunk) = export.next_chunk().await? {
            bytes += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(CampaignsError::internal)?;
        }
        file.sync_all().await.map_err(CampaignsError::internal)?;
        drop(file);
        tokio::fs::rename(&partial, folder.join(&name)).await.map_err(CampaignsError::internal)?;
        Ok(AudienceFile { name, rows: export.written(), bytes })
    }
}
