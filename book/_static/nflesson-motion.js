// The course's animations (GIFs) loop for as long as they are shown. WCAG 2.2.2 (Pause, Stop,
// Hide) asks for a way to stop them: each GIF gets a button under it that freezes it on the frame
// it shows (drawn on a canvas that takes its place, with the same text alternative) and plays it
// again. Readers whose system asks for reduced motion get every animation paused from the start.
document.addEventListener("DOMContentLoaded", () => {
  const reduced = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  document.querySelectorAll("img[src$='.gif']").forEach((img) => {
    const still = document.createElement("canvas");
    still.className = `${img.className} nflesson-still`;
    still.setAttribute("role", "img");
    still.setAttribute("aria-label", img.alt);
    still.hidden = true;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "nflesson-motion";
    const show = (paused) => {
      if (paused) {
        const box = img.getBoundingClientRect();
        still.width = img.naturalWidth;
        still.height = img.naturalHeight;
        still.style.width = `${box.width}px`;
        still.style.height = `${box.height}px`;
        still.getContext("2d").drawImage(img, 0, 0);
      }
      still.hidden = !paused;
      img.hidden = paused;
      button.textContent = paused ? "\u25B6 Play animation" : "\u23F8 Pause animation";
      button.setAttribute("aria-pressed", String(paused));
    };
    button.addEventListener("click", () => show(!img.hidden));
    img.after(still, button);
    show(false);
    if (reduced) {
      if (img.complete && img.naturalWidth > 0) show(true);
      else img.addEventListener("load", () => show(true), { once: true });
    }
  });
});
