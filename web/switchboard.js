/* placeholder, replaced by the web app work */
