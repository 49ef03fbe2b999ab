#pragma once
// The report's page: plain HTML5, one file, no script or stylesheet from elsewhere, figures
// inline as base64 PNG (so it opens offline and mails as one file).
#include <string>
#include <vector>

#include "report/figures.h"
#include "report/study_data.h"

namespace lmsweep::report {

struct PageFigure {
  const Figure* figure = nullptr;
  std::string png_base64;  // name.png, encoded
};

struct PageInputs {
  const StudyData* data = nullptr;
  std::string database;          // its path, as given
  db::StatusCounts counts;
  std::vector<PageFigure> figures;
  std::vector<std::string> skipped;
  int top = 10;
};

std::string render_page(const PageInputs& in);

std::string base64(const std::string& bytes);
std::string html_escape(const std::string& text);

}  // namespace lmsweep::report
