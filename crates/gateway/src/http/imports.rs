//! `PUT /imports/{workspaceId}/{importId}`: the file of an import created with the
//! `createImport` mutation, as the raw CSV body. The body is parsed while it streams in, so a
//! file of millions of rows never sits in memory; the answer is the job once the file is in.
//! Authentication as for GraphQL: `Authorization: Bearer <JWT or secret API key>`.

use super::{AppState, graphql};
use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use futures::StreamExt;
use kernel::{ErrorCode, ImportId, WorkspaceId};
use profiles::{ProfilesError, imports::ImportJob};
use serde_json::json;

/// Largest file accepted in one upload.
const MAX_IMPORT_BYTES: u64 = 4 * 1024 * 1024 * 1024;

pub(super) fn routes(config: &mut web::ServiceConfig) {
    config.route("/imports/{workspace}/{import}", web::put().to(upload));
}

fn refuse(code: ErrorCode, message: &str) -> HttpResponse {
    let status = match code {
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::BadUserInput => StatusCode::BAD_REQUEST,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    graphql::error_response(status, code, message)
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
    let credential = graphql::bearer(&req).map(|raw| state.tenancy.identify(raw));
    let principal = credential.as_ref().and_then(|c| c.as_ref().ok()).map(|c| c.rate_limit_key());
    if let Some(refused) = graphql::limit_client(&state, &req, principal.as_deref()).await {
        return refused;
    }
    let Some(credential) = credential else {
        return refuse(
            ErrorCode::Unauthenticated,
            "an `Authorization: Bearer` token or secret key is required",
        );
    };
    let Ok(credential) = credential else {
        return refuse(ErrorCode::Unauthenticated, "the credential is invalid or expired");
    };
    let actor = match state.tenancy.authenticate(credential).await {
        Ok(actor) => actor,
        Err(error) if error.code() == ErrorCode::Internal => {
            tracing::error!(error = %error, "authentication failed internally");
            return refuse(ErrorCode::Internal, "temporarily unavailable; retry");
        }
        Err(_) => return refuse(ErrorCode::Unauthenticated, "the credential is invalid or expired"),
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
