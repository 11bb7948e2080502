'use strict';
// The list filters that pick one brand or campaign with the admin's autocomplete: choosing a row
// (or clearing it) reloads the list with that filter, keeping the others and going to page 1.
{
    const $ = django.jQuery;
    $(function() {
        $('select.autocomplete-filter').on('change', function() {
            const params = new URLSearchParams(window.location.search);
            const value = $(this).val();
            if (value) {
                params.set(this.dataset.parameter, value);
            } else {
                params.delete(this.dataset.parameter);
            }
            params.delete('p');
            window.location.search = params.toString();
        });
    });
}
