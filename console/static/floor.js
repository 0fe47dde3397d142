// The floor's screen pop: follow my seat's events; the moment a call is given to my seat,
// open its case (/floor/calls/<attempt>). No build step, no library: EventSource and location.
(function () {
  "use strict";
  var holder = document.querySelector("[data-live]");
  if (!holder || !holder.getAttribute("data-live") || !window.EventSource) { return; }
  var showing = holder.getAttribute("data-call") || "";
  var source = new EventSource("/api/floor/events");
  source.addEventListener("seat", function (message) {
    var seat;
    try { seat = JSON.parse(message.data); } catch (e) { return; }
    if ((seat.state === "reserved" || seat.state === "on_call") && seat.attempt_id && seat.attempt_id !== showing) {
      showing = seat.attempt_id;
      window.location.assign("/floor/calls/" + encodeURIComponent(seat.attempt_id));
    } else if (!showing && holder.id === "floor") {
      var row = document.querySelector("#seats");
      if (row) { row.setAttribute("data-last", seat.state); }
    }
  });
})();
