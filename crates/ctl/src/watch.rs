//! `lannerctl watch`: a live, top-like view of every queue.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyModifiers};
use crossterm::{cursor, execute, terminal};
use lanner_client::blocking::Client;

use crate::format::{self, QueueFigures, Rates};
use crate::online;

/// One poll of the server.
struct Sample {
    at: Instant,
    server: Vec<(String, String)>,
    queues: Vec<QueueFigures>,
}

impl Sample {
    fn take(client: &Client) -> anyhow::Result<Sample> {
        Ok(Sample {
            at: Instant::now(),
            server: online::server_stats(client)?,
            queues: online::queue_figures(client, &[])?,
        })
    }

    fn server_figure(&self, key: &str) -> &str {
        self.server
            .iter()
            .find(|(name, _)| name == key)
            .map_or("?", |(_, value)| value.as_str())
    }
}

/// Per-second rates of each queue between two samples: items added (from `total_items`), and
/// items that left the queue (taken, expired, discarded or flushed: added minus the growth).
fn rates(previous: &Sample, current: &Sample) -> HashMap<String, Rates> {
    let seconds = current.at.duration_since(previous.at).as_secs_f64();
    if seconds <= 0.0 {
        return HashMap::new();
    }
    let before: HashMap<&str, &QueueFigures> = previous
        .queues
        .iter()
        .map(|queue| (queue.name.as_str(), queue))
        .collect();
    current
        .queues
        .iter()
        .filter_map(|now| {
            let then = before.get(now.name.as_str())?;
            let number = |queue: &QueueFigures, key| queue.number(key).unwrap_or(0) as f64;
            let added = (number(now, "total_items") - number(then, "total_items")).max(0.0);
            let grown = number(now, "items") - number(then, "items");
            let rates = Rates {
                enqueued: added / seconds,
                dequeued: (added - grown).max(0.0) / seconds,
            };
            Some((now.name.clone(), rates))
        })
        .collect()
}

fn render(sample: &Sample, rates: &HashMap<String, Rates>) -> String {
    let table = format::queue_table(&sample.queues, Some(rates));
    format!(
        "lanner {}  uptime {}s  connections {}  items {}  (q to quit)\n{table}\n",
        sample.server_figure("version"),
        sample.server_figure("uptime"),
        sample.server_figure("curr_connections"),
        sample.server_figure("curr_items"),
    )
}

/// Restores the terminal however the view ends.
struct Screen;

impl Screen {
    fn enter() -> std::io::Result<Screen> {
        terminal::enable_raw_mode()?;
        let screen = Screen;
        execute!(
            std::io::stdout(),
            terminal::EnterAlternateScreen,
            cursor::Hide
        )?;
        Ok(screen)
    }

    fn draw(&self, frame: &str) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        execute!(
            out,
            cursor::MoveTo(0, 0),
            terminal::Clear(terminal::ClearType::All)
        )?;
        // Raw mode does not turn "\n" into a carriage return and a line feed.
        out.write_all(frame.replace('\n', "\r\n").as_bytes())?;
        out.flush()
    }

    /// Waits up to `wait` for a key; true if it asks to quit.
    fn quit_requested(&self, wait: Duration) -> std::io::Result<bool> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if !event::poll(left)? {
                return Ok(false);
            }
            if let Event::Key(key) = event::read()?
                && is_quit(key)
            {
                return Ok(true);
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        // Best effort: the terminal may already be gone.
        let _ = execute!(
            std::io::stdout(),
            cursor::Show,
            terminal::LeaveAlternateScreen
        );
        let _ = terminal::disable_raw_mode();
    }
}

fn is_quit(key: KeyEvent) -> bool {
    matches!(key.code, KeyCode::Char('q') | KeyCode::Esc)
        || (key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL))
}

/// Refreshes every `interval_ms` until q/Ctrl-C, or after `iterations` frames. On a terminal
/// it redraws in place; otherwise (a pipe, a test) it prints one frame after the other.
pub fn run(client: &Client, iterations: Option<u64>, interval_ms: u64) -> anyhow::Result<()> {
    let interval = Duration::from_millis(interval_ms);
    let screen = if std::io::stdout().is_terminal() {
        Some(Screen::enter()?)
    } else {
        None
    };
    let mut previous: Option<Sample> = None;
    let mut frames = 0;
    loop {
        let sample = Sample::take(client)?;
        let rates = previous
            .as_ref()
            .map(|previous| rates(previous, &sample))
            .unwrap_or_default();
        let frame = render(&sample, &rates);
        match &screen {
            Some(screen) => screen.draw(&frame)?,
            None => {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{frame}")?;
                out.flush()?;
            }
        }
        frames += 1;
        if iterations.is_some_and(|limit| frames >= limit) {
            return Ok(());
        }
        match &screen {
            Some(screen) => {
                if screen.quit_requested(interval)? {
                    return Ok(());
                }
            }
            None => std::thread::sleep(interval),
        }
        previous = Some(sample);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: Instant, total: u64, items: u64) -> Sample {
        Sample {
            at,
            server: Vec::new(),
            queues: vec![QueueFigures {
                name: "q".into(),
                figures: vec![
                    ("items".into(), items.to_string()),
                    ("total_items".into(), total.to_string()),
                ],
            }],
        }
    }

    #[test]
    fn rates_from_successive_samples() {
        let start = Instant::now();
        let before = sample(start, 100, 50);
        let after = sample(start + Duration::from_secs(2), 120, 40);
        let rates = rates(&before, &after);
        assert_eq!(
            rates["q"],
            Rates {
                enqueued: 10.0,
                dequeued: 15.0
            }
        );
        let frame = render(&after, &rates);
        assert!(frame.contains("10.0") && frame.contains("15.0"), "{frame}");
    }
}
