// The patient timeline opens on today: centred between the past (left) and the next two weeks (right), or, on a
// narrow screen where the days stack, at the top. Without script the "Jump to today" link does the same.
document.addEventListener("DOMContentLoaded", () => {
  const box = document.querySelector("[data-timeline]");
  const today = document.getElementById("today");
  if (!box || !today) return;
  if (box.scrollWidth > box.clientWidth + 1) {
    box.scrollLeft = today.offsetLeft - (box.clientWidth - today.offsetWidth) / 2;
  } else {
    box.scrollTop = today.offsetTop;
  }
});
