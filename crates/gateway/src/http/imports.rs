//! `PUT /imports/{workspaceId}/{importId}`: the file of an import created with the
//! `createImport` mutation, as the raw CSV body. The body is parsed while it streams in, so a
//! file of millions of rows never sits in memory; the answer is the job once the file is in.
//! Authentication as for GraphQL: `Authorization: Bearer <JWT or secret API key>`.

use super::{
    AppState,
    staff_auth::{self, refuse},
};
use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use futures::StreamExt;
use kernel::{ErrorCode, ImportId, WorkspaceId};
use profiles::{ProfilesError, imports::ImportJob};
use serde_json::json;

/// Largest file accepted in one upload.
const MAX_IMPORT_BYTES: u64 = 4 * 1024 * 1024 * 1024;

pub(super) fn routes(config: &mut web::ServiceConfig, cors: super::cors::StaffCors) {
    config.service(web::resource("/imports/{workspace}/{import}").wrap(cors).route(web::put().to(upload)));
}

fn refuse_error(error: &ProfilesError) -> HttpResponse {
    if error.code() == ErrorCode::Internal {
        tracing::error!(error = %error, "import upload failed");
        return refuse(ErrorCode::Internal, "temporarily unavailable; send the file again");
    }
    refuse(error.code(), &error.to_string())
}

async fn upload(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (Ok(workspace), Ok(import)) = (path.0.parse::<WorkspaceId>(), path.1.parse::<ImportId>()) else {
        return refuse(ErrorCode::NotFound, "no such import");
    };
    let actor = match staff_auth::actor(&state, &req).await {
        Ok(actor) => actor,
        Err(refused) => return refused,
    };
    let mut upload = match state.profiles.start_import_upload(&actor, workspace, import).await {
        Ok(upload) => upload,
        Err(error) => return refuse_error(&error),
    };
    let mut received: u64 = 0;
    while let Some(chunk) = payload.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(_) => {
                let error = upload.abort("the upload broke off; send the file again to resume").await;
                return refuse_error(&error);
            }
        };
        received += chunk.len() as u64;
        if received > MAX_IMPORT_BYTES {
            let error = upload.abort("the file is larger than 4 GiB; split it into several imports").await;
            let mut response = refuse(ErrorCode::BadUserInput, &error.to_string());
            *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            return response;
        }
        if let Err(error) = upload.feed(&chunk).await {
            return refuse_error(&error);
        }
    }
    match upload.finish().await {
        Ok(job) => HttpResponse::Ok().json(summary(&job)),
        Err(error) => refuse_error(&error),
    }
}

fn summary(job: &ImportJob) -> serde_json::Value {
    json!({
        "id": job.id.to_string(),
        "status": job.status.as_str().to_uppercase(),
        "rowsRead": job.rows_read,
        "rowsImported": job.rows_imported,
        "rowsAlreadyImported": job.rows_already_imported,
        "rowsRejected": job.rows_rejected,
        "errors": job.errors.iter().map(|e| json!({
            "row": e.row, "column": e.column, "code": e.code, "message": e.message,
        })).collect::<Vec<_>>(),
    })
}
