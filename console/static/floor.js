// The floor's screen pop: follow my seat's events; the moment a call is given to my seat,
// open its case (/floor/calls/<attempt>). No build step, no library: EventSource and location.
(function () {
  "use strict";
  var holder = document.querySelector("[data-live]");
  if (!holder || !holder.getAttribute("data-live") || !window.EventSource) { return; }
  var showing = holder.getAttribute("data-call") || "";
  var timer = null;
  // the call is over: the wrap-up timer (ready again by itself after floor.wrap_up_s, or when
  // the collector presses Ready; with no automatic end it counts the seconds spent)
  function startWrapUp(seat) {
    var box = document.getElementById("wrap-up");
    if (!box || timer) { return; }
    var started = Date.now(), left = seat.wrap_up_left, spent = seat.seconds || 0;
    function show() {
      var elapsed = (Date.now() - started) / 1000;
      if (left !== null && left !== undefined) {
        box.textContent = box.getAttribute("data-label").replace("{seconds}", String(Math.max(0, Math.ceil(left - elapsed))));
      } else {
        box.textContent = box.getAttribute("data-open-label").replace("{seconds}", String(Math.floor(spent + elapsed)));
      }
    }
    box.hidden = false;
    box.setAttribute("data-state", "wrap_up");
    show();
    timer = window.setInterval(show, 1000);
  }
  var source = new EventSource("/api/floor/events");
  source.addEventListener("seat", function (message) {
    var seat;
    try { seat = JSON.parse(message.data); } catch (e) { return; }
    if (seat.state === "wrap_up" && seat.attempt_id && seat.attempt_id === showing) {
      startWrapUp(seat);
      return;
    }
    if ((seat.state === "reserved" || seat.state === "on_call") && seat.attempt_id && seat.attempt_id !== showing) {
      showing = seat.attempt_id;
      window.location.assign("/floor/calls/" + encodeURIComponent(seat.attempt_id));
    } else if (!showing && holder.id === "floor") {
      var row = document.querySelector("#seats");
      if (row) { row.setAttribute("data-last", seat.state); }
    }
  });
})();
