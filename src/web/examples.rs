//! "Papers like these" on the preferences page (paste, forget one still waiting), the
//! reference library (upload, remove), and adding a paper from its page when the reader
//! came from their web copy.

use anyhow::Context;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::client_ip::ClientIp;
use super::form::PageForm;
use super::manage::{ExamplesReport, Notes, Subscriber, by_manage_link, page_with};
use super::{AppError, AppState};
use crate::domain::{ArxivId, Purpose};
use crate::ratings::examples::parse_pasted;
use crate::ratings::library;
use crate::store::examples::{self as stored, Source};
use crate::store::subscribers;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ExamplesForm {
    examples: String,
}

/// `POST /preferences/{token}/examples`: adds the pasted papers as 👍 examples.
#[tracing::instrument(name = "add_examples", skip_all)]
pub async fn add(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
    PageForm(form): PageForm<ExamplesForm>,
) -> Result<Response, AppError> {
    app.check_subscriber_rate(&ip)?;
    let subscriber = by_manage_link(&app, &token).await?;
    let pasted = match parse_pasted(&form.examples) {
        Ok(pasted) => pasted,
        Err(error) => {
            let report = ExamplesReport { error: Some(error), ..Default::default() };
            let notes = Notes { examples: Some(report), ..Notes::default() };
            let page = page_with(&app, &subscriber, notes).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let topics = subscriber.row.preferences().topics.items().to_vec();
    let added = app
        .examples
        .add(subscriber.row.id, &topics, &pasted.ids, Source::Example)
        .await
        .context("adding the examples")?;
    tracing::info!(rated = added.rated.len(), waiting = added.waiting.len(), "examples added");
    let mut rejected: Vec<(String, String)> =
        pasted.rejected.into_iter().map(|(entry, why)| (entry, why.to_string())).collect();
    rejected.extend(added.missing.iter().map(|id| (id.clone(), "arXiv has no such paper".into())));
    let report = ExamplesReport {
        error: None,
        added: added.rated.len(),
        waiting: added.waiting.len(),
        rejected,
    };
    let notes = Notes { examples: Some(report), ..Notes::default() };
    Ok(page_with(&app, &subscriber, notes).await?.into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ForgetForm {
    arxiv_id: String,
}

/// `POST /preferences/{token}/examples/forget`: forgets an example still waiting for its
/// paper (or that arXiv does not have). A liked one is removed as any 👍 is, by its Undo.
pub async fn forget(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
    PageForm(form): PageForm<ForgetForm>,
) -> Result<Response, AppError> {
    app.check_subscriber_rate(&ip)?;
    let subscriber = by_manage_link(&app, &token).await?;
    stored::forget_waiting(&app.db, subscriber.row.id, form.arxiv_id.trim())
        .await
        .context("forgetting an example")?;
    let to = format!("{}#examples", app.links.preferences_path(&subscriber.row.id));
    Ok(Redirect::to(&to).into_response())
}

/// `POST /preferences/{token}/library` (multipart, field `library`): replaces the reader's
/// library with an uploaded BibTeX file, whole or not at all.
#[tracing::instrument(name = "upload_library", skip_all)]
pub async fn upload(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
    multipart: Multipart,
) -> Result<Response, AppError> {
    app.check_subscriber_rate(&ip)?;
    let subscriber = by_manage_link(&app, &token).await?;
    let refused = |message: String| async {
        let notes = Notes { library: Some(Err(message)), ..Notes::default() };
        let page = page_with(&app, &subscriber, notes).await?;
        Ok::<_, AppError>((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
    };
    let (name, bytes) = match library_file(multipart).await {
        Ok(file) => file,
        Err(message) => return refused(message).await,
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return refused(
            "That file is not text (BibTeX is UTF-8 text); nothing was changed.".into(),
        )
        .await;
    };
    let read = match library::read(&text) {
        Ok(read) => read,
        Err(message) => return refused(message).await,
    };
    let topics = subscriber.row.preferences().topics.items().to_vec();
    library::upload(&app.examples, subscriber.row.id, &topics, &name, &read)
        .await
        .context("storing the library")?;
    tracing::info!(entries = read.entries, arxiv = read.arxiv.len(), "library uploaded");
    let used = read.arxiv.len() + read.direct.len();
    let message = format!("Read {} entries of {name}: {used} used.", read.entries);
    let notes = Notes { library: Some(Ok(message)), ..Notes::default() };
    Ok(page_with(&app, &subscriber, notes).await?.into_response())
}

/// What the reader is told when an upload breaks off.
fn upload_error(e: axum::extract::multipart::MultipartError) -> String {
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => library::TOO_LARGE.into(),
        _ => format!("The upload did not arrive whole ({e}); nothing was changed."),
    }
}

/// The uploaded file's name and bytes, or what is wrong with the upload.
async fn library_file(mut multipart: Multipart) -> Result<(String, Vec<u8>), String> {
    while let Some(field) = multipart.next_field().await.map_err(upload_error)? {
        if field.name() != Some("library") {
            continue;
        }
        let name = field.file_name().unwrap_or("library.bib").to_string();
        let bytes = field.bytes().await.map_err(upload_error)?;
        if bytes.len() > library::MAX_BYTES {
            return Err(library::TOO_LARGE.into());
        }
        if bytes.is_empty() {
            return Err("Please choose a .bib file to upload.".into());
        }
        return Ok((name, bytes.to_vec()));
    }
    Err("Please choose a .bib file to upload.".into())
}

/// `POST /preferences/{token}/library/remove`: removes the library and what it added.
pub async fn remove(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    app.check_subscriber_rate(&ip)?;
    let Subscriber { row, .. } = by_manage_link(&app, &token).await?;
    let topics = row.preferences().topics.items().to_vec();
    library::remove(&app.examples, row.id, &topics).await.context("removing the library")?;
    let to = format!("{}#examples", app.links.preferences_path(&row.id));
    Ok(Redirect::to(&to).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LikeForm {
    arxiv_id: String,
}

/// `POST /examples/{token}` (a rating token, from a web copy): adds one paper to the
/// reader's "papers like these", then shows its page again.
#[tracing::instrument(name = "like_paper", skip_all)]
pub async fn like(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
    PageForm(form): PageForm<LikeForm>,
) -> Result<Response, AppError> {
    let id = app.links.signer().verify(Purpose::Rate, &token).ok_or(AppError::NotFound)?;
    let paper = ArxivId::parse(&form.arxiv_id).ok_or(AppError::NotFound)?;
    app.check_subscriber_rate(&ip)?;
    let row = subscribers::find_by_id(&app.db, id)
        .await
        .context("loading the subscriber")?
        .ok_or(AppError::NotFound)?;
    let topics = row.preferences().topics.items().to_vec();
    app.examples
        .add(row.id, &topics, &[paper.to_string()], Source::Example)
        .await
        .context("adding the example")?;
    let to = format!("/papers/{paper}?reader={token}&added=1");
    Ok(Redirect::to(&to).into_response())
}
