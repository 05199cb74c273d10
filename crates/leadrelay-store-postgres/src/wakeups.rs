//! Wake-ups across nodes: a transaction that makes deliveries due sends `NOTIFY` on this
//! database's channel (`Db::work_is_due`, delivered at commit), and every node holds one
//! connection that `LISTEN`s and wakes its worker. The listening connection is its own, outside
//! the pool, and comes back by itself after the database does; a wake-up is also given each
//! time it (re)connects, since notifications sent while it was away are lost. Workers poll as
//! well, so a lost wake-up costs at most one poll interval.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use leadrelay_core::storage::Result;
use tokio_postgres::AsyncMessage;

use crate::map_err;

type Subscriber = Arc<dyn Fn() + Send + Sync>;

pub(crate) struct Wakeups {
    channel: String,
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl Wakeups {
    /// Names the channel after the schema the pool's connections use (tests run many schemas in
    /// one database; nodes of one installation share one), and starts listening.
    pub(crate) async fn start(config: tokio_postgres::Config, pool: deadpool_postgres::Pool) -> Result<Self> {
        // A hash, since a channel name is at most 63 bytes and a schema's may be as long.
        let channel: String = {
            let conn = pool.get().await.map_err(crate::pool_error)?;
            let sql = "SELECT 'leadrelay_work_' || left(md5(current_schema()), 16)";
            conn.query_one(sql, &[]).await.map_err(map_err)?.get(0)
        };
        let subscribers: Arc<Mutex<Vec<Subscriber>>> = Arc::default();
        let listener = tokio::spawn(listen(config, channel.clone(), Arc::clone(&subscribers)));
        Ok(Self { channel, subscribers, listener })
    }

    pub(crate) fn channel(&self) -> &str {
        &self.channel
    }

    pub(crate) fn subscribe(&self, wake: Subscriber) {
        if let Ok(mut list) = self.subscribers.lock() {
            list.push(wake);
        }
    }
}

fn wake_all(subscribers: &Mutex<Vec<Subscriber>>) {
    let list: Vec<Subscriber> = subscribers.lock().map(|l| l.clone()).unwrap_or_default();
    for wake in list {
        wake();
    }
}

/// Listens until the task is aborted, reconnecting after a pause whenever the connection ends.
async fn listen(config: tokio_postgres::Config, channel: String, subscribers: Arc<Mutex<Vec<Subscriber>>>) {
    let quoted = format!("\"{}\"", channel.replace('"', "\"\""));
    loop {
        match config.connect(crate::tls()).await {
            Ok((client, mut connection)) => {
                let (ended_tx, ended) = tokio::sync::oneshot::channel::<()>();
                let to_wake = Arc::clone(&subscribers);
                let driver = tokio::spawn(async move {
                    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(AsyncMessage::Notification(_)) => wake_all(&to_wake),
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "the PostgreSQL connection listening for work ended");
                                break;
                            }
                        }
                    }
                    let _ = ended_tx.send(());
                });
                match client.batch_execute(&format!("LISTEN {quoted}")).await {
                    Ok(()) => {
                        wake_all(&subscribers);
                        let _ = ended.await;
                    }
                    Err(e) => tracing::warn!(error = %e, "LISTEN failed; retrying"),
                }
                driver.abort();
            }
            Err(e) => tracing::debug!(error = %e, "cannot listen for work yet; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
