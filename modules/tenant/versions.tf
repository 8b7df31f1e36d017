terraform {
  # 1.0.3 is the oldest version this module is tested with. It has no optional() object
  # attributes and no dynamic validation messages, which is why the user lists are
  # list(map(string)) and the checks below fail through tobool() with the bad value in the text.
  required_version = ">= 1.0.3"

  required_providers {
    usualstore = {
      source = "usualstore/usualstore"
    }
  }
}
