//! `pcbulk sandbox`: the Partner Center simulator on loopback, until Ctrl-C or SIGTERM.

use std::io::Write;

use crate::error::{exit, Error};
use crate::sandbox::{self, Options};

pub async fn serve(opts: Options) -> Result<u8, Error> {
    let running = sandbox::start(opts)
        .await
        .map_err(|e| Error::Usage(format!("cannot start the sandbox: {e:#}")))?;
    let url = running.base_url();
    let said = (|| {
        let mut out = std::io::stdout();
        writeln!(out, "pcbulk sandbox listening on {url}")?;
        writeln!(
            out,
            "  try: PCBULK_ACCESS_TOKEN=sandbox pcbulk apply samples/support-contacts.csv --base-url {url}"
        )?;
        writeln!(
            out,
            "  state: {url}/_sandbox/state   stats: {url}/_sandbox/stats   stop: Ctrl-C"
        )?;
        out.flush()
    })();
    said.map_err(|e| Error::io("cannot write to standard output", e))?;
    shutdown_signal().await;
    running.shutdown().await;
    Ok(exit::OK)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
