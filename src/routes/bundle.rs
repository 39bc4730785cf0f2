//! Third-party client files a listener serves from the app's `node_modules`
//! (never shipped with switchboard): a socket.io client bundle, EasyRTC's
//! browser API. Looked up when requested, in this order: the path given by
//! a flag, the app's own `node_modules` under `--static`, then
//! `node_modules` in the current directory. When none is there, the answer
//! is a 404 that says what to install or which flag to give.

use std::path::{Path, PathBuf};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::warn;

/// One file (or folder) to look up.
#[derive(Clone)]
pub struct Bundle {
    /// Given by a flag.
    pub explicit: Option<PathBuf>,
    /// The listener's `--static` folder.
    pub static_dir: Option<PathBuf>,
    /// Where it sits inside an npm project, preferred first.
    pub paths: &'static [&'static str],
    /// What to serve it as, for the message (e.g. `/socket.io/socket.io.js`).
    pub served_at: &'static str,
    /// How to get it: the npm command and the flag.
    pub how: &'static str,
    /// Whether a found candidate under `node_modules` is the right one
    /// (e.g. the right major version); the flag's path is always taken.
    pub accept: fn(&Path) -> bool,
}

/// Any file found is the right one.
pub fn any(_: &Path) -> bool {
    true
}

impl Bundle {
    /// Candidate paths, in lookup order.
    pub fn candidates(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self.explicit.iter().cloned().collect();
        for base in self.static_dir.iter().map(PathBuf::as_path).chain([Path::new(".")]) {
            out.extend(self.paths.iter().map(|p| base.join(p)));
        }
        out
    }

    /// The first candidate that exists.
    pub fn find(&self) -> Option<PathBuf> {
        if let Some(p) = self.explicit.as_ref().filter(|p| p.exists()) {
            return Some(p.clone());
        }
        self.candidates().into_iter().skip(self.explicit.iter().count()).find(|p| p.exists() && (self.accept)(p))
    }

    /// What to tell the operator when nothing is found.
    pub fn missing_message(&self) -> String {
        let looked: Vec<String> = self.candidates().iter().map(|p| p.display().to_string()).collect();
        format!(
            "switchboard has nothing to serve at {}. {}. Looked in: {}",
            self.served_at,
            self.how,
            looked.join(", ")
        )
    }

    /// Logs the missing message at startup when nothing is found yet.
    pub fn warn_if_missing(&self) {
        if self.find().is_none() {
            warn!("{}", self.missing_message());
        }
    }

    /// The 404 for a request when nothing is found.
    pub fn not_found(&self) -> Response {
        (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], self.missing_message())
            .into_response()
    }
}

/// Serves the file at `path` as `content_type`.
pub async fn serve_file(path: &Path, content_type: &'static str) -> Response {
    match tokio::fs::read(path).await {
        Ok(body) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(e) => {
            let msg = format!("cannot read {}: {e}", path.display());
            warn!("{msg}");
            (StatusCode::INTERNAL_SERVER_ERROR, msg).into_response()
        }
    }
}
