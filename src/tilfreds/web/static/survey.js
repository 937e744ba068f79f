// Progressive enhancement of the survey page: a follow-up question (show_if) is hidden until the
// answer it depends on calls for it. Without JavaScript every question shows, with its hint, and
// the server drops answers to questions whose condition does not hold.
"use strict";
(function () {
  var form = document.querySelector("form.survey");
  if (!form) { return; }
  var boxes = Array.prototype.slice.call(form.querySelectorAll("[data-show-if]"));
  function holds(rule) {
    var picked = form.querySelector('input[name="' + rule.question + '"]:checked');
    if (!picked) { return false; }
    var value = picked.value, number = Number(value);
    if (rule.equals != null && value !== rule.equals) { return false; }
    if (rule.at_most != null && !(number <= rule.at_most)) { return false; }
    return !(rule.at_least != null && !(number >= rule.at_least));
  }
  function update() {
    boxes.forEach(function (box) { box.hidden = !holds(JSON.parse(box.dataset.showIf)); });
  }
  form.addEventListener("change", update);
  update();
})();
