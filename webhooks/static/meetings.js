// The meetings page hears of meetings changing (a customer agreeing a time on a call, a
// call's outcome, a meeting arranged or cancelled elsewhere) and says so, with a link to
// see the change: the page is not redrawn under someone filling in a form.
(() => {
  const notice = document.getElementById("meetings-changed");
  if (!notice || !window.EventSource) return;
  const text = document.getElementById("meetings-changed-text");
  const WORDS = {
    "meeting.time_booked": "A time has been agreed for a meeting",
    "meeting.outcome": "A customer has answered a meeting call",
    "meeting.added": "A meeting has been arranged",
    "meeting.cancelled": "A meeting has been cancelled",
  };
  const seen = [];  // each kind of change once, in the order they came
  const events = new EventSource("/console/events");
  events.addEventListener("change", (event) => {
    let note = {};
    try { note = JSON.parse(event.data); } catch (_) { return; }
    const words = WORDS[note.kind];
    if (!words || seen.includes(words)) return;
    seen.push(words);
    text.textContent = seen.map((w) => `${w}.`).join(" ");
    notice.hidden = false;
  });
})();
