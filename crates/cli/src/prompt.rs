//! The interactive device prompt on a terminal, as on a device: line editing and history
//! (arrows, Ctrl-A/E, ...), Tab completion of keywords from the device grammar, `?` that answers
//! at once and gives the line back with the cursor where it was, Ctrl-C that drops the line and
//! keeps the session. Line editing is rustyline's; history lives as long as the session.

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{
    Cmd, ColorMode, CompletionType, ConditionalEventHandler, Config, Context, Editor, Event, EventContext, Helper,
};
use rustyline::{EventHandler, KeyEvent, RepeatCount};
use smartlic_agent::cli::{Cli, Mode};
use std::borrow::Cow;
use std::sync::{Arc, Mutex, MutexGuard};

/// What the user gave at the prompt.
pub enum Input {
    /// A line to run: ended by Enter, or by `?` in a command (then the line up to the cursor and
    /// the `?`, for the device to answer; the line comes back at the next read).
    Line(String),
    /// Ctrl-C: the line is dropped.
    Cancelled,
    /// Ctrl-D on an empty line: the session ends.
    End,
}

/// What the `?` key, the completer and the reader share.
#[derive(Default)]
struct Shared {
    /// The line is a command: false while reading a pasted certificate or an answer, where `?`
    /// and Tab are plain characters.
    command: bool,
    /// `?` was typed: the line split at the cursor.
    help: Option<(String, String)>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The device prompt: reads one line at a time from the terminal.
pub struct Prompt {
    editor: Editor<DeviceHelper, DefaultHistory>,
    shared: Arc<Mutex<Shared>>,
    /// The line a `?` answered, given back at the next read.
    resume: Option<(String, String)>,
}

impl Prompt {
    pub fn new() -> rustyline::Result<Prompt> {
        // Pasted lines run one by one, as typed on a device (a pasted block of configuration, a
        // certificate after `crypto pki authenticate`).
        let config = Config::builder()
            .completion_type(CompletionType::List)
            .bracketed_paste(false)
            // The highlighter draws the `?` (no colours): used on every terminal.
            .color_mode(ColorMode::Forced)
            .build();
        let mut editor = Editor::with_config(config)?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        editor.set_helper(Some(DeviceHelper { cli: Cli::new(), mode: Mode::Exec, shared: shared.clone() }));
        editor.bind_sequence(KeyEvent::from('?'), EventHandler::Conditional(Box::new(HelpKey(shared.clone()))));
        Ok(Prompt { editor, shared, resume: None })
    }

    /// Reads a line after `prompt`. `mode` is the device's mode, for completion; `command` is
    /// false when the device reads something else than a command (a certificate, an answer).
    pub fn read(&mut self, prompt: &str, mode: &Mode, command: bool) -> rustyline::Result<Input> {
        if let Some(helper) = self.editor.helper_mut() {
            helper.mode = mode.clone();
        }
        lock(&self.shared).command = command;
        let resume = self.resume.take().filter(|_| command);
        let read = match &resume {
            Some((left, right)) => self.editor.readline_with_initial(prompt, (left, right)),
            None => self.editor.readline(prompt),
        };
        let help = lock(&self.shared).help.take();
        match (read, help) {
            (Ok(_), Some((left, right))) => {
                let asked = format!("{left}?");
                self.resume = Some((left, right));
                Ok(Input::Line(asked))
            }
            (Ok(line), None) => {
                if command && !line.trim().is_empty() {
                    self.editor.add_history_entry(line.as_str())?;
                }
                Ok(Input::Line(line))
            }
            (Err(ReadlineError::Interrupted), _) => Ok(Input::Cancelled),
            (Err(ReadlineError::Eof), _) => Ok(Input::End),
            (Err(e), _) => Err(e),
        }
    }
}

/// `?` in a command ends the read at once (the device answers, then the line comes back);
/// elsewhere it is a plain character.
struct HelpKey(Arc<Mutex<Shared>>);

impl ConditionalEventHandler for HelpKey {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext) -> Option<Cmd> {
        let mut shared = lock(&self.0);
        if !shared.command {
            return None;
        }
        let (left, right) = ctx.line().split_at(ctx.pos());
        shared.help = Some((left.to_string(), right.to_string()));
        Some(Cmd::AcceptLine)
    }
}

/// Completion from the device grammar, and the `?` echo.
struct DeviceHelper {
    cli: Cli,
    mode: Mode,
    shared: Arc<Mutex<Shared>>,
}

impl Completer for DeviceHelper {
    type Candidate = Pair;

    /// Candidates replace the line up to the cursor, written out; the list shows the keywords.
    fn complete(&self, line: &str, pos: usize, _: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        if !lock(&self.shared).command {
            return Ok((pos, Vec::new()));
        }
        let pairs = (self.cli.complete(&self.mode, &line[..pos]).into_iter())
            .map(|replacement| Pair {
                display: replacement.split_whitespace().last().unwrap_or_default().to_string(),
                replacement,
            })
            .collect();
        Ok((0, pairs))
    }
}

impl Validator for DeviceHelper {
    /// A line ended by `?` is drawn once more before the answer: a message after it makes
    /// rustyline redraw it, the `?` itself when the cursor was at the end ([`Self::highlight`]
    /// draws it otherwise).
    fn validate(&self, _: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        let echo = lock(&self.shared).help.as_ref().map(|(_, right)| if right.is_empty() { "?" } else { "" });
        Ok(ValidationResult::Valid(echo.map(str::to_string)))
    }
}

impl Hinter for DeviceHelper {
    type Hint = String;
}

impl Highlighter for DeviceHelper {
    /// With `?` typed in the middle of a line, the line stays on screen as the device read it:
    /// the text before the cursor and the `?`, blanks over the rest (the same width).
    fn highlight<'l>(&self, line: &'l str, pos: usize) -> Cow<'l, str> {
        match &lock(&self.shared).help {
            Some((_, right)) if !right.is_empty() => {
                Cow::Owned(format!("{}?{}", &line[..pos], " ".repeat(right.chars().count() - 1)))
            }
            _ => Cow::Borrowed(line),
        }
    }
}

impl Helper for DeviceHelper {}
