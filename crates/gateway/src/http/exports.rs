//! `GET /exports/{workspaceId}/segments/{segmentId}?format=hashed|postal|phone&channel=…&purpose=…`:
//! a segment's people as a CSV audience file for one channel, streamed as it is read (consent
//! for the purpose, `marketing` by default, on that channel and the minors rule are checked
//! for each person at this moment). Authentication as for GraphQL.

use super::{
    AppState,
    staff_auth::{self, refuse},
};
use actix_web::{HttpRequest, HttpResponse, web};
use kernel::{ErrorCode, SegmentId, WorkspaceId};
use segments::export::{AudienceFormat, ExportRequest};
use serde::Deserialize;

pub(super) fn routes(config: &mut web::ServiceConfig, cors: super::cors::StaffCors) {
    config.service(
        web::resource("/exports/{workspace}/segments/{segment}").wrap(cors).route(web::get().to(export)),
    );
}

#[derive(Deserialize)]
struct ExportQuery {
    format: Option<String>,
    channel: Option<String>,
    purpose: Option<String>,
}

async fn export(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<ExportQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (Ok(workspace), Ok(segment)) = (path.0.parse::<WorkspaceId>(), path.1.parse::<SegmentId>()) else {
        return refuse(ErrorCode::NotFound, "no such segment");
    };
    let actor = match staff_auth::actor(&state, &req).await {
        Ok(actor) => actor,
        Err(refused) => return refused,
    };
    let query = query.into_inner();
    let (Some(format), Some(channel)) = (query.format, query.channel) else {
        return refuse(
            ErrorCode::BadUserInput,
            "name the `format` (hashed, postal or phone) and the `channel`",
        );
    };
    let format = match AudienceFormat::parse(&format) {
        Ok(format) => format,
        Err(error) => return refuse(error.code(), &error.to_string()),
    };
    let request =
        ExportRequest { format, channel, purpose: query.purpose.unwrap_or_else(|| "marketing".into()) };
    let export = match state.segments.start_export(&actor, workspace, segment, request).await {
        Ok(export) => export,
        Err(error) if error.code() == ErrorCode::Internal => {
            tracing::error!(error = %error, "audience export failed");
            return refuse(ErrorCode::Internal, "temporarily unavailable; retry");
        }
        Err(error) => return refuse(error.code(), &error.to_string()),
    };
    // One batch of people per chunk of the body; a failure midway ends the body early, which
    // the client sees as a broken transfer rather than a file that looks complete.
    let body = futures::stream::unfold(export, |mut export| async move {
        match export.next_chunk().await {
            Ok(Some(bytes)) => Some((Ok::<_, actix_web::Error>(web::Bytes::from(bytes)), export)),
            Ok(None) => None,
            Err(error) => {
                tracing::error!(error = %error, "audience export broke off");
                Some((Err(actix_web::error::ErrorServiceUnavailable("the export broke off")), export))
            }
        }
    });
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("content-disposition", format!("attachment; filename=\"segment-{segment}.csv\"")))
        .streaming(body)
}
